package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"strconv"
	"sync"
	"time"
)

// The advertise probe (client_advertise_probe) finds the host port that
// publishes this frontdoor's client port when nothing tells it: a replica
// of a scaled compose service gets one port of a range, chosen by Docker.
// The frontdoor dials every port of the range at the probe host (the
// Docker host, as containers reach it) and reads the INFO each answers
// with; the one port whose INFO carries this frontdoor's server_id leads
// back here. Until then it advertises nothing, so clients never learn an
// address that is not its own.
const (
	probeDialTimeout = 500 * time.Millisecond
	probeReadTimeout = time.Second
	probeParallel    = 16 // dials in flight at once
	probeFirstRetry  = 500 * time.Millisecond
	probeMaxRetry    = 5 * time.Second
	probeWarnAfter   = 30 * time.Second
)

// runAdvertiseProbe probes until it finds this frontdoor's port or the
// server shuts down; it starts once the client port accepts.
func (s *Server) runAdvertiseProbe(ctx context.Context) {
	cfg := s.Config()
	host, lo, hi, err := cfg.AdvertiseProbe()
	if err != nil { // Validate refused it already
		return
	}
	handshake := cfg.TLS != nil && cfg.TLS.HandshakeFirst
	began := time.Now()
	warned := false
	wait := probeFirstRetry
	for {
		found := s.probePorts(ctx, host, lo, hi, handshake)
		switch {
		case len(found) == 1:
			s.probedPort.Store(int32(found[0]))
			s.log.Infof("client_advertise_probe: %s:%d leads back to this frontdoor; advertising %v to clients",
				host, found[0], s.ownClientURLs())
			if s.routing != nil {
				s.routing.readvertise()
			}
			return
		case len(found) > 1:
			// Something else answers with this server's id: advertising
			// either could send clients to it.
			s.log.Errorf("client_advertise_probe: ports %v at %s all answer with this frontdoor's id %s; advertising none of them (is a proxy on the host relaying to it?)",
				found, host, s.id)
		case !warned && time.Since(began) > probeWarnAfter:
			warned = true
			s.log.Warnf("client_advertise_probe: none of the ports %d-%d at %s leads to this frontdoor after %v; "+
				"clients are not told of it until one does. Publish the client port on that range on an address "+
				"containers can reach (0.0.0.0 or the Docker bridge), and map the probe host to the Docker host (extra_hosts: host-gateway)",
				lo, hi, host, probeWarnAfter)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, probeMaxRetry)
	}
}

// probePorts dials host:lo..hi and returns the ports whose INFO names this
// server.
func (s *Server) probePorts(ctx context.Context, host string, lo, hi int, handshake bool) []int {
	var (
		mu    sync.Mutex
		found []int
		wg    sync.WaitGroup
		slots = make(chan struct{}, probeParallel)
	)
	for p := lo; p <= hi && ctx.Err() == nil; p++ {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			if probeServerID(ctx, net.JoinHostPort(host, strconv.Itoa(p)), handshake) == s.id {
				mu.Lock()
				found = append(found, p)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return found
}

// probeServerID returns the server_id in the INFO that addr sends first,
// or "" when it sends none in time (nothing listens, another protocol, a
// Docker proxy with no container behind it yet).
func probeServerID(ctx context.Context, addr string, handshake bool) string {
	d := net.Dialer{Timeout: probeDialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return ""
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(probeReadTimeout))
	if handshake {
		// Only the id is read: the certificate needs no checking.
		conn = tls.Client(conn, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads an id, trusts nothing
	}
	line, err := bufio.NewReaderSize(conn, 64<<10).ReadSlice('\n')
	if err != nil {
		return ""
	}
	body, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("INFO "))
	if !ok {
		return ""
	}
	var info struct {
		ServerID string `json:"server_id"`
	}
	if json.Unmarshal(body, &info) != nil {
		return ""
	}
	return info.ServerID
}
