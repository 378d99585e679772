package core

import (
	"net/http"
	"time"
)

// Routez is the frontdoor's /routez: its links to the router tier.
type Routez struct {
	ID        string      `json:"server_id"`
	Now       time.Time   `json:"now"`
	NumRoutes int         `json:"num_routes"`
	Routes    []RouteInfo `json:"routes"`
}

// RouteInfo is one router link.
type RouteInfo struct {
	Router         string `json:"router"`     // resolved host:port
	Configured     string `json:"configured"` // the address it came from
	Up             bool   `json:"up"`
	Primary        bool   `json:"primary"` // messages go through this one
	RemoteInterest int    `json:"remote_interest"`
	PendingMsgs    int    `json:"pending_msgs"`
	PendingBytes   int    `json:"pending_bytes"`
}

// Routez reports the router links (none for a lone frontdoor).
func (s *Server) Routez() *Routez {
	rz := &Routez{ID: s.id, Now: time.Now(), Routes: []RouteInfo{}}
	rt := s.routing
	if rt == nil {
		return rz
	}
	primary := rt.primary.Load()
	rt.mu.Lock()
	links := append([]*routerLink(nil), rt.links...)
	rt.mu.Unlock()
	for _, l := range links {
		l.mu.Lock()
		ri := RouteInfo{Router: l.addr, Configured: l.target, Up: l.up.Load(), Primary: l == primary,
			RemoteInterest: l.remote.Count(), PendingMsgs: len(l.msgs), PendingBytes: l.msgBytes}
		l.mu.Unlock()
		rz.Routes = append(rz.Routes, ri)
	}
	rz.NumRoutes = len(rz.Routes)
	return rz
}

func (s *Server) handleRoutez(w http.ResponseWriter, r *http.Request) { writeJSON(w, r, s.Routez()) }
