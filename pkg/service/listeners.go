// Package service holds what every Switchyard gRPC service (router,
// authsvc, ...) does the same way: listen on its port and an optional
// monitoring port, serve both, and report the bound addresses.
package service

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/switchyard-io/switchyard/pkg/logging"
)

// Listeners is a service's port (for gRPC) and monitoring port.
type Listeners struct {
	mu      sync.Mutex
	ln      net.Listener
	httpLn  net.Listener
	httpSrv *http.Server
	served  sync.WaitGroup
}

// Options say where to listen and what to serve. Port and HTTPPort -1 or
// 0 pick a free port, except that HTTPPort 0 turns monitoring off.
type Options struct {
	Host           string
	Port, HTTPPort int
	Peers          string // who connects, for messages: "nodes", "frontdoors"
	Monitor        http.Handler
	Serve          func(net.Listener) error // e.g. grpc.Server.Serve
	Log            *logging.Logger
}

// Start opens both ports and serves them in the background.
func (l *Listeners) Start(o Options) error {
	addr := net.JoinHostPort(o.Host, strconv.Itoa(max(o.Port, 0)))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening for %s on %s: %w (port)", o.Peers, addr, err)
	}
	if o.HTTPPort != 0 {
		maddr := net.JoinHostPort(o.Host, strconv.Itoa(max(o.HTTPPort, 0)))
		hln, err := net.Listen("tcp", maddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listening for monitoring on %s: %w (http_port)", maddr, err)
		}
		srv := &http.Server{Handler: o.Monitor, ReadHeaderTimeout: 5 * time.Second}
		l.mu.Lock()
		l.httpLn, l.httpSrv = hln, srv
		l.mu.Unlock()
		o.Log.Infof("Starting http monitor on %s", LogAddr(o.Host, hln.Addr()))
		l.served.Add(1)
		go func() {
			defer l.served.Done()
			if err := srv.Serve(hln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				o.Log.Errorf("Monitoring server stopped: %v", err)
			}
		}()
	}
	l.mu.Lock()
	l.ln = ln
	l.mu.Unlock()
	o.Log.Infof("Listening for %s on %s", o.Peers, LogAddr(o.Host, ln.Addr()))
	l.served.Add(1)
	go func() {
		defer l.served.Done()
		if err := o.Serve(ln); err != nil {
			o.Log.Errorf("Listener for %s stopped: %v", o.Peers, err)
		}
	}()
	return nil
}

// CloseMonitor stops the monitoring server; the caller stops what Serve
// runs (which closes the main port), then calls Wait.
func (l *Listeners) CloseMonitor() {
	l.mu.Lock()
	srv := l.httpSrv
	l.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Wait returns once both servers have returned.
func (l *Listeners) Wait() { l.served.Wait() }

// Addr is the main port's address (nil before Start).
func (l *Listeners) Addr() net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln == nil {
		return nil
	}
	return l.ln.Addr()
}

// MonitorAddr is the monitoring port's address, nil when off.
func (l *Listeners) MonitorAddr() net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.httpLn == nil {
		return nil
	}
	return l.httpLn.Addr()
}

// LogAddr shows the configured host with the bound port, as nats-server
// does ("0.0.0.0:7422" rather than Go's "[::]:7422").
func LogAddr(host string, a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return net.JoinHostPort(host, strconv.Itoa(ta.Port))
	}
	return a.String()
}

// RegisterFlags binds the listening flags every service shares, as
// nats-server spells them: -a/--addr, -p/--port and -m/--http_port, with
// the current values as defaults.
func RegisterFlags(fs *flag.FlagSet, host *string, port, httpPort *int, peers string) {
	for _, n := range []string{"a", "addr"} {
		fs.StringVar(host, n, *host, "Network host to listen on for "+peers)
	}
	for _, n := range []string{"p", "port"} {
		fs.IntVar(port, n, *port, "Port for "+peers+" (0 or -1: any free port)")
	}
	for _, n := range []string{"m", "http_port"} {
		fs.IntVar(httpPort, n, *httpPort, "HTTP port for monitoring (0: off, -1: any free port)")
	}
}
