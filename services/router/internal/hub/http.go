package hub

import (
	"encoding/json"
	"net/http"
	"time"
)

// Handler serves the monitoring endpoints: /healthz, /nodez (attached
// nodes, like nats-server's /routez) and /interestz (graph size per
// account).
func (h *Hub) Handler(name string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/nodez", func(w http.ResponseWriter, r *http.Request) {
		nodes := h.Nodes()
		writeJSON(w, struct {
			RouterID string     `json:"router_id"`
			Name     string     `json:"name,omitempty"`
			Now      time.Time  `json:"now"`
			NumNodes int        `json:"num_nodes"`
			Nodes    []NodeInfo `json:"nodes"`
		}{h.opts.RouterID, name, time.Now().UTC(), len(nodes), nodes})
	})
	mux.HandleFunc("/interestz", func(w http.ResponseWriter, r *http.Request) {
		accounts := h.Interest()
		var entries int
		var subs int64
		for _, a := range accounts {
			entries += a.Entries
			subs += a.Subscriptions
		}
		writeJSON(w, struct {
			RouterID      string         `json:"router_id"`
			Now           time.Time      `json:"now"`
			NumAccounts   int            `json:"num_accounts"`
			Entries       int            `json:"total_entries"`
			Subscriptions int64          `json:"total_subscriptions"`
			Accounts      []AccountStats `json:"accounts"`
		}{h.opts.RouterID, time.Now().UTC(), len(accounts), entries, subs, accounts})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '\n'))
}
