// Package frontdoor is the embeddable frontdoor service: a NATS server for
// clients. A single frontdoor with nothing else running is a complete
// single-server core NATS.
//
//	fd, err := frontdoor.New(cfg, log)
//	err = fd.Start()
//	<-fd.Ready()
//	defer fd.Stop()
package frontdoor

import (
	"net"

	"github.com/switchyard-io/switchyard/pkg/config"
	"github.com/switchyard-io/switchyard/pkg/logging"
	"github.com/switchyard-io/switchyard/pkg/node"
)

// Config is the frontdoor's part of a nats-server configuration file.
type Config = config.Server

// Version is the nats-server version the frontdoor reports and matches.
const Version = node.Version

// Frontdoor is a running (or ready to run) frontdoor.
type Frontdoor struct {
	srv *node.Server
}

// New validates cfg; nothing listens until Start.
func New(cfg Config, log *logging.Logger) (*Frontdoor, error) {
	srv, err := node.New(cfg, log)
	if err != nil {
		return nil, err
	}
	return &Frontdoor{srv: srv}, nil
}

// Start opens the client port and, when http_port is set, monitoring.
func (f *Frontdoor) Start() error {
	if err := f.srv.StartMonitoring(); err != nil {
		return err
	}
	if err := f.srv.StartProfiling(); err != nil {
		return err
	}
	return f.srv.Start()
}

// Ready is closed once clients can connect.
func (f *Frontdoor) Ready() <-chan struct{} { return f.srv.Ready() }

// Stop closes every connection and waits for them.
func (f *Frontdoor) Stop() { f.srv.Shutdown() }

// Done is closed once the frontdoor has stopped, by Stop or by itself
// (ocsp mode must or always seeing its certificate revoked).
func (f *Frontdoor) Done() <-chan struct{} { return f.srv.Done() }

// LameDuck drains clients gradually (lame_duck_duration), then stops.
func (f *Frontdoor) LameDuck() { f.srv.LameDuck() }

// Reload applies a changed configuration.
func (f *Frontdoor) Reload(cfg Config) error { return f.srv.Reload(cfg) }

// ClientAddr is the client listener's address.
func (f *Frontdoor) ClientAddr() net.Addr { return f.srv.Addr() }

// WebSocketAddr is the WebSocket listener's address, nil without one.
func (f *Frontdoor) WebSocketAddr() net.Addr { return f.srv.WebSocketAddr() }

// MonitorAddr is the monitoring listener's address, nil when off.
func (f *Frontdoor) MonitorAddr() net.Addr { return f.srv.MonitorAddr() }
