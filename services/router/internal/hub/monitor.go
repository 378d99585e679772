package hub

import (
	"cmp"
	"slices"
	"time"
)

// NodeInfo describes one attached node for /nodez.
type NodeInfo struct {
	ID              string    `json:"node_id"`
	Name            string    `json:"name,omitempty"`
	Kind            string    `json:"kind,omitempty"`
	ClientURLs      []string  `json:"client_urls,omitempty"`
	WSURLs          []string  `json:"ws_urls,omitempty"`
	MeshURL         string    `json:"mesh_url,omitempty"`
	Attached        time.Time `json:"attached"`
	InterestEntries int       `json:"interest_entries"`
	Subscriptions   int64     `json:"subscriptions"`
	PendingBytes    int64     `json:"pending_bytes"`
}

// Nodes lists the attached nodes, sorted by id.
func (h *Hub) Nodes() []NodeInfo {
	h.mu.RLock()
	out := make([]NodeInfo, 0, len(h.nodes))
	for _, n := range h.nodes {
		out = append(out, NodeInfo{
			ID: n.id, Name: n.name, Kind: n.kind, ClientURLs: n.clientURLs, WSURLs: n.wsURLs, MeshURL: n.meshURL,
			Attached:        n.since,
			InterestEntries: len(n.interest),
			Subscriptions:   n.subscriptions,
			PendingBytes:    n.out.Pending(),
		})
	}
	h.mu.RUnlock()
	slices.SortFunc(out, func(a, b NodeInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Interest is the graph's size per account, sorted by account.
func (h *Hub) Interest() []AccountStats {
	h.mu.RLock()
	out := h.graph.stats()
	h.mu.RUnlock()
	slices.SortFunc(out, func(a, b AccountStats) int { return cmp.Compare(a.Account, b.Account) })
	return out
}
