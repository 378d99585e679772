package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-io/switchyard/pkg/config"
)

// The advertise probe (client_advertise_probe, and websocket {}'s
// advertise_probe) finds the host port that publishes this frontdoor's
// client (or WebSocket) port when nothing tells it: a replica
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

// advertiseProbe is one port to find: the client port or the WebSocket
// port.
type advertiseProbe struct {
	key       string // the configuration key, for logs
	spec      string // host:lo-hi
	ws        bool   // answer through a WebSocket upgrade
	handshake bool   // TLS before anything (handshake_first, wss)
	found     *atomic.Int32
}

// advertiseProbes lists the probes the configuration asks for.
func (s *Server) advertiseProbes(cfg *Config) []advertiseProbe {
	if cfg.NoAdvertise {
		return nil
	}
	var ps []advertiseProbe
	if cfg.ClientAdvertiseProbe != "" {
		ps = append(ps, advertiseProbe{key: "client_advertise_probe", spec: cfg.ClientAdvertiseProbe,
			handshake: cfg.TLS != nil && cfg.TLS.HandshakeFirst, found: &s.probedPort})
	}
	if w := cfg.WebSocket; w.Enabled() && w.AdvertiseProbe != "" {
		ps = append(ps, advertiseProbe{key: "websocket advertise_probe", spec: w.AdvertiseProbe,
			ws: true, handshake: w.TLS != nil, found: &s.probedWSPort})
	}
	return ps
}

// runAdvertiseProbe probes until it finds its port or the server shuts
// down; it starts once the port accepts.
func (s *Server) runAdvertiseProbe(ctx context.Context, p advertiseProbe) {
	host, lo, hi, err := config.ParseProbe(p.spec)
	if err != nil { // Validate refused it already
		return
	}
	began := time.Now()
	warned := false
	var ambiguous []int // last reported, so a standing conflict is logged once
	wait := probeFirstRetry
	for {
		found := s.probePorts(ctx, host, lo, hi, p)
		switch {
		case len(found) == 1:
			p.found.Store(int32(found[0]))
			s.log.Infof("%s: %s:%d leads back to this frontdoor; advertising %v to clients",
				p.key, host, found[0], append(s.ownClientURLs(), s.ownWSURLs()...))
			if s.routing != nil {
				s.routing.readvertise()
			}
			return
		case len(found) > 1 && !slices.Equal(found, ambiguous):
			// Something else answers with this server's id: advertising
			// either could send clients to it.
			ambiguous = found
			s.log.Errorf("%s: ports %v at %s all answer with this frontdoor's id %s; advertising none of them (is a proxy on the host relaying to it?)",
				p.key, found, host, s.id)
		case len(found) == 0 && !warned && time.Since(began) > probeWarnAfter:
			warned = true
			s.log.Warnf("%s: none of the ports %d-%d at %s leads to this frontdoor after %v; "+
				"clients are not told of it until one does. Publish the port on that range on an address "+
				"containers can reach (0.0.0.0 or the Docker bridge), and map the probe host to the Docker host (extra_hosts: host-gateway)",
				p.key, lo, hi, host, probeWarnAfter)
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
func (s *Server) probePorts(ctx context.Context, host string, lo, hi int, p advertiseProbe) []int {
	var (
		mu    sync.Mutex
		found []int
		wg    sync.WaitGroup
		slots = make(chan struct{}, probeParallel)
	)
	for port := lo; port <= hi && ctx.Err() == nil; port++ {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			if probeServerID(ctx, net.JoinHostPort(host, strconv.Itoa(port)), p) == s.id {
				mu.Lock()
				found = append(found, port)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(found)
	return found
}

// probeServerID returns the server_id in the INFO that addr sends first,
// or "" when it sends none in time (nothing listens, another protocol, a
// Docker proxy with no container behind it yet).
func probeServerID(ctx context.Context, addr string, p advertiseProbe) string {
	d := net.Dialer{Timeout: probeDialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return ""
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(probeReadTimeout))
	if p.handshake {
		// Only the id is read: the certificate needs no checking.
		conn = tls.Client(conn, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads an id, trusts nothing
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	var line []byte
	if p.ws {
		line = probeWebSocketINFO(conn, r, addr)
	} else {
		line, _ = r.ReadSlice('\n')
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

// probeWebSocketINFO upgrades conn to a WebSocket (no compression offered)
// and returns the payload of the first frame, where the INFO is; nil when
// the answer is anything else.
func probeWebSocketINFO(conn net.Conn, r *bufio.Reader, addr string) []byte {
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: c3dpdGNoeWFyZC1wcm9iZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return nil
	}
	status, err := r.ReadSlice('\n')
	if err != nil || !bytes.HasPrefix(status, []byte("HTTP/1.1 101")) {
		return nil
	}
	for { // the response headers, up to the empty line
		h, err := r.ReadSlice('\n')
		if err != nil {
			return nil
		}
		if len(bytes.TrimSpace(h)) == 0 {
			break
		}
	}
	var head [2]byte
	if _, err := io.ReadFull(r, head[:]); err != nil || head[0]&0x0f != 2 { // a binary frame
		return nil
	}
	n := uint64(head[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return nil
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return nil
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if n > 64<<10 {
		return nil
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return nil
	}
	return payload
}
