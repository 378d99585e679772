package node

import (
	"fmt"
	"time"

	"github.com/switchyard-io/switchyard/pkg/config"
)

// LameDuck stops accepting clients, tells connected clients with an INFO
// carrying "ldm":true so they reconnect elsewhere, waits the grace period,
// then closes them spread evenly over the rest of lame_duck_duration, so a
// rolling restart moves clients gradually instead of all at once. It returns
// once every client is gone and the server is shut down.
func (s *Server) LameDuck() {
	if s.shutdown.Load() || !s.lameDuck.CompareAndSwap(false, true) {
		return
	}
	cfg := s.Config()
	clients := s.stopAccepting()
	dur, grace := cfg.LameDuckDuration, cfg.LameDuckGracePeriod
	if grace >= dur {
		grace = 0
	}
	s.log.Infof("Entering lame duck mode, stop accepting new clients; closing %d clients over %v after a %v grace period",
		len(clients), dur, grace)
	info := s.baseInfo()
	info.LameDuckMode = true
	line := infoLine(&info)
	for _, c := range clients {
		if c.ws != nil {
			wi := info
			c.adjustInfo(&wi)
			c.out.appendRaw(infoLine(&wi))
		} else {
			c.out.appendRaw(line)
		}
		c.flush()
	}
	time.Sleep(grace)
	if n := len(clients); n > 0 {
		step := (dur - grace) / time.Duration(n)
		for _, c := range clients {
			c.closeConnection("Server Shutdown", true)
			if step > 0 {
				time.Sleep(step)
			}
		}
	}
	s.Shutdown()
}

// InLameDuck reports whether lame-duck mode has begun.
func (s *Server) InLameDuck() bool { return s.lameDuck.Load() }

// Reload applies a new configuration to the running server: limits, ping
// settings, logging levels and mappings change at once; listen addresses
// and the server name need a restart and are refused by name.
func (s *Server) Reload(next Config) error {
	if err := next.Validate(); err != nil {
		return err
	}
	cur := s.Config()
	type fixed struct {
		key      string
		was, now any
	}
	for _, f := range []fixed{
		{"host", cur.Host, next.Host},
		{"port", cur.Port, next.Port},
		{"http_host", cur.MonitorHost(), next.MonitorHost()},
		{"http_port", cur.HTTPPort, next.HTTPPort},
		{"prof_port", cur.ProfPort, next.ProfPort},
		{"server_name", cur.ServerName, next.ServerName},
		{"client_advertise_probe", cur.ClientAdvertiseProbe, next.ClientAdvertiseProbe},
		{"websocket", wsListenKey(cur.WebSocket), wsListenKey(next.WebSocket)},
		{"websocket advertise_probe", wsProbeKey(cur.WebSocket), wsProbeKey(next.WebSocket)},
	} {
		if f.was != f.now {
			return fmt.Errorf("config reload: %q cannot change from %v to %v without a restart", f.key, f.was, f.now)
		}
	}
	if err := s.setConfig(&next); err != nil {
		return err
	}
	s.cfgGen.Add(1)
	if s.routing != nil && (cur.ClientAdvertise != next.ClientAdvertise || cur.NoAdvertise != next.NoAdvertise ||
		wsAdvertiseKey(cur.WebSocket) != wsAdvertiseKey(next.WebSocket)) {
		s.routing.readvertise()
	}
	s.log.SetLevels(next.Debug, next.Trace)
	s.log.Infof("Reloaded server configuration")
	return nil
}

// wsAdvertiseKey is websocket {}'s advertise, which a reload may change.
func wsAdvertiseKey(w *config.WebSocket) string {
	if w == nil {
		return ""
	}
	return w.Advertise
}

// wsProbeKey is websocket {}'s advertise_probe, which needs a restart.
func wsProbeKey(w *config.WebSocket) string {
	if w == nil {
		return ""
	}
	return w.AdvertiseProbe
}

// wsListenKey is what of websocket {} needs a restart to change: whether
// it listens, where, and whether with TLS.
func wsListenKey(w *config.WebSocket) string {
	if !w.Enabled() {
		return "off"
	}
	return fmt.Sprintf("%s:%d tls=%v", w.Host, w.Port, w.TLS != nil)
}
