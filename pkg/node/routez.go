package node

import (
	"cmp"
	"github.com/switchyard-io/switchyard/pkg/subject"
	"net/http"
	"slices"
	"time"
)

// Routez is the frontdoor's /routez: its links to the router tier and its
// mesh connections to the other nodes.
type Routez struct {
	ID        string      `json:"server_id"`
	Now       time.Time   `json:"now"`
	NumRoutes int         `json:"num_routes"`
	Routes    []RouteInfo `json:"routes"`
	MeshURL   string      `json:"mesh_url,omitempty"`
	Peers     []PeerInfo  `json:"peers"`
	Inbound   []PeerInfo  `json:"inbound"`
}

// RouteInfo is one router link.
type RouteInfo struct {
	Router         string `json:"router"`     // resolved host:port
	Configured     string `json:"configured"` // the address it came from
	Up             bool   `json:"up"`
	Primary        bool   `json:"primary"` // remote interest is matched against this one's
	RemoteInterest int    `json:"remote_interest"`
}

// PeerInfo is one mesh connection: to another node (peers) or from one
// (inbound).
type PeerInfo struct {
	NodeID       string `json:"node_id"`
	Name         string `json:"name,omitempty"`
	Addr         string `json:"addr"`
	Up           bool   `json:"up"`
	Msgs         int64  `json:"msgs"`  // sent (peers) or received (inbound)
	Bytes        int64  `json:"bytes"` // payload and header bytes
	PendingBytes int    `json:"pending_bytes,omitempty"`
}

// Routez reports the router links and mesh connections (none for a lone
// frontdoor).
func (s *Server) Routez() *Routez {
	rz := &Routez{ID: s.id, Now: time.Now(), Routes: []RouteInfo{}, Peers: []PeerInfo{}, Inbound: []PeerInfo{}}
	rt := s.routing
	if rt == nil {
		return rz
	}
	rz.MeshURL = rt.meshURL
	primary := rt.primary.Load()
	rt.mu.Lock()
	links := append([]*routerLink(nil), rt.links...)
	rt.mu.Unlock()
	for _, l := range links {
		rz.Routes = append(rz.Routes, RouteInfo{Router: l.addr, Configured: l.target, Up: l.up.Load(),
			Primary: l == primary, RemoteInterest: l.remoteCount()})
	}
	rz.NumRoutes = len(rz.Routes)
	for _, p := range *rt.peers.Load() {
		pi := PeerInfo{NodeID: p.id, Name: p.name, Addr: p.url, Up: p.up.Load()}
		if c := p.out.Load(); c != nil {
			c.out.mu.Lock()
			pi.Msgs, pi.Bytes, pi.PendingBytes = c.out.msgs, c.out.bytes, c.out.pending
			c.out.mu.Unlock()
		}
		rz.Peers = append(rz.Peers, pi)
	}
	rt.inbound.Range(func(k, _ any) bool {
		in := k.(*inboundPeer)
		rz.Inbound = append(rz.Inbound, PeerInfo{NodeID: in.node, Addr: in.remote, Up: true, Msgs: in.msgs.Load(), Bytes: in.size.Load()})
		return true
	})
	byNode := func(a, b PeerInfo) int { return cmp.Compare(a.NodeID, b.NodeID) }
	slices.SortFunc(rz.Peers, byNode)
	slices.SortFunc(rz.Inbound, byNode)
	return rz
}

func (s *Server) handleRoutez(w http.ResponseWriter, r *http.Request) { writeJSON(w, r, s.Routez()) }

// remoteCount is the number of remote interest entries over all accounts.
func (l *routerLink) remoteCount() int {
	n := 0
	l.remotes.Range(func(_, v any) bool {
		n += v.(*subject.Sublist[remoteSub]).Count()
		return true
	})
	return n
}
