package node

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/switchyard-io/switchyard/pkg/subject"
)

// The monitoring endpoints speak nats-server's JSON field names so existing
// scrapers and dashboards (prometheus-nats-exporter, natstop, Grafana
// boards) read them unchanged.

// ConnInfo is one /connz entry.
type ConnInfo struct {
	Cid            uint64      `json:"cid"`
	Kind           string      `json:"kind"`
	Type           string      `json:"type"`
	IP             string      `json:"ip"`
	Port           int         `json:"port"`
	Start          time.Time   `json:"start"`
	LastActivity   time.Time   `json:"last_activity"`
	Stop           *time.Time  `json:"stop,omitempty"`
	Reason         string      `json:"reason,omitempty"`
	RTT            string      `json:"rtt,omitempty"`
	Uptime         string      `json:"uptime"`
	Idle           string      `json:"idle"`
	Pending        int         `json:"pending_bytes"`
	InMsgs         int64       `json:"in_msgs"`
	OutMsgs        int64       `json:"out_msgs"`
	InBytes        int64       `json:"in_bytes"`
	OutBytes       int64       `json:"out_bytes"`
	NumSubs        uint32      `json:"subscriptions"`
	Name           string      `json:"name,omitempty"`
	Lang           string      `json:"lang,omitempty"`
	Version        string      `json:"version,omitempty"`
	TLSVersion     string      `json:"tls_version,omitempty"`
	TLSCipher      string      `json:"tls_cipher_suite,omitempty"`
	Account        string      `json:"account,omitempty"`
	AuthorizedUser string      `json:"authorized_user,omitempty"`
	Subs           []string    `json:"subscriptions_list,omitempty"`
	SubsDetail     []SubDetail `json:"subscriptions_list_detail,omitempty"`
	subsSnapshot   []SubDetail
}

// ClosedConn is a ConnInfo kept after the connection ended.
type ClosedConn = ConnInfo

// SubDetail is one subscription in /connz?subs=detail.
type SubDetail struct {
	Account string `json:"account,omitempty"`
	Subject string `json:"subject"`
	Queue   string `json:"qgroup,omitempty"`
	Sid     string `json:"sid"`
	Msgs    int64  `json:"msgs"`
	Max     int64  `json:"max,omitempty"`
	Cid     uint64 `json:"cid"`
}

// connInfo snapshots a live or closing connection.
func (c *client) connInfo(now time.Time) *ConnInfo {
	c.mu.Lock()
	ci := &ConnInfo{
		Cid: c.id, Kind: "Client", Type: "nats", IP: c.host, Port: c.port,
		Start: c.start, LastActivity: c.lastActive,
		Name: c.name, Lang: c.lang, Version: c.version,
		Uptime: humanDuration(now.Sub(c.start)), Idle: humanDuration(now.Sub(c.lastActive)),
		Reason: c.closeReason, AuthorizedUser: c.identity,
		TLSVersion: c.tlsVersion, TLSCipher: c.tlsCipher,
	}
	if c.ws != nil {
		ci.Type = "websocket"
	}
	if c.authAcc != nil {
		ci.Account = c.authAcc.name
	}
	if c.rtt > 0 {
		ci.RTT = c.rtt.String()
	}
	ci.NumSubs = uint32(len(c.subs))
	for _, s := range c.subs {
		ci.subsSnapshot = append(ci.subsSnapshot, SubDetail{Subject: s.subject, Queue: s.queue, Sid: s.sid,
			Msgs: s.delivered.Load(), Max: s.max.Load(), Cid: c.id})
	}
	c.mu.Unlock()
	sort.Slice(ci.subsSnapshot, func(i, j int) bool { return ci.subsSnapshot[i].Sid < ci.subsSnapshot[j].Sid })
	ci.InMsgs, ci.InBytes = c.statInMsgs.Load(), c.statInBytes.Load()
	c.out.mu.Lock()
	ci.OutMsgs, ci.OutBytes, ci.Pending = c.out.msgs, c.out.bytes, c.out.pending
	c.out.mu.Unlock()
	return ci
}

func (c *client) closedSnapshot(reason string) *ClosedConn {
	now := time.Now()
	ci := c.connInfo(now)
	ci.Reason = reason
	ci.Stop = &now
	return ci
}

func humanDuration(d time.Duration) string {
	// nats-server's layout: whole seconds, units from the largest present
	// down to seconds ("1m27s", "2h3m0s", "1d2h0m0s", "1y2d0h0m0s").
	secs := int64(d / time.Second)
	mins, hrs := secs/60, secs/3600
	days := hrs / 24
	years := days / 365
	switch {
	case years > 0:
		return fmt.Sprintf("%dy%dd%dh%dm%ds", years, days%365, hrs%24, mins%60, secs%60)
	case days > 0:
		return fmt.Sprintf("%dd%dh%dm%ds", days, hrs%24, mins%60, secs%60)
	case hrs > 0:
		return fmt.Sprintf("%dh%dm%ds", hrs, mins%60, secs%60)
	case mins > 0:
		return fmt.Sprintf("%dm%ds", mins, secs%60)
	}
	return fmt.Sprintf("%ds", secs)
}

// WebsocketVarz is /varz's websocket section (nats-server's fields).
type WebsocketVarz struct {
	Host             string        `json:"host,omitempty"`
	Port             int           `json:"port,omitempty"`
	Advertise        string        `json:"advertise,omitempty"`
	NoTLS            bool          `json:"no_tls,omitempty"`
	SameOrigin       bool          `json:"same_origin,omitempty"`
	AllowedOrigins   []string      `json:"allowed_origins,omitempty"`
	Compression      bool          `json:"compression,omitempty"`
	HandshakeTimeout time.Duration `json:"handshake_timeout,omitempty"`
	JWTCookie        string        `json:"jwt_cookie,omitempty"`
	UserCookie       string        `json:"user_cookie,omitempty"`
	PassCookie       string        `json:"pass_cookie,omitempty"`
	TokenCookie      string        `json:"token_cookie,omitempty"`
}

// Connz is the /connz document.
type Connz struct {
	ID       string      `json:"server_id"`
	Now      time.Time   `json:"now"`
	NumConns int         `json:"num_connections"`
	Total    int         `json:"total"`
	Offset   int         `json:"offset"`
	Limit    int         `json:"limit"`
	Conns    []*ConnInfo `json:"connections"`
}

// ConnzOptions are /connz's query parameters.
type ConnzOptions struct {
	Sort   string // cid (default), start, subs, pending, msgs_to, msgs_from, bytes_to, bytes_from, last, idle, uptime, stop, reason, rtt
	Subs   bool
	Detail bool
	State  string // open (default), closed, any
	CID    uint64
	Offset int
	Limit  int
}

// Connz lists connections as nats-server's /connz does.
func (s *Server) Connz(o ConnzOptions) *Connz {
	now := time.Now()
	if o.Limit <= 0 {
		o.Limit = 1024
	}
	var all []*ConnInfo
	s.mu.Lock()
	live := make([]*client, 0, len(s.clients))
	for _, c := range s.clients {
		live = append(live, c)
	}
	var closed []*ClosedConn
	if o.State == "closed" || o.State == "any" || o.State == "all" {
		closed = append(closed, s.closed...)
	}
	s.mu.Unlock()
	if o.State != "closed" {
		for _, c := range live {
			all = append(all, c.connInfo(now))
		}
	}
	for _, ci := range closed {
		cp := *ci
		all = append(all, &cp)
	}
	if o.CID > 0 {
		filtered := all[:0]
		for _, ci := range all {
			if ci.Cid == o.CID {
				filtered = append(filtered, ci)
			}
		}
		all = filtered
	}
	sortConns(all, o.Sort)
	cz := &Connz{ID: s.id, Now: now, Total: len(all), Offset: o.Offset, Limit: o.Limit}
	if o.Offset < len(all) {
		all = all[o.Offset:]
	} else {
		all = nil
	}
	if len(all) > o.Limit {
		all = all[:o.Limit]
	}
	for _, ci := range all {
		switch {
		case o.Detail:
			ci.SubsDetail = ci.subsSnapshot
		case o.Subs:
			for _, sd := range ci.subsSnapshot {
				ci.Subs = append(ci.Subs, sd.Subject)
			}
		}
	}
	cz.Conns = all
	if cz.Conns == nil {
		cz.Conns = []*ConnInfo{}
	}
	cz.NumConns = len(cz.Conns)
	return cz
}

func sortConns(all []*ConnInfo, by string) {
	less := map[string]func(a, b *ConnInfo) bool{
		"start":      func(a, b *ConnInfo) bool { return a.Start.Before(b.Start) },
		"subs":       func(a, b *ConnInfo) bool { return a.NumSubs > b.NumSubs },
		"pending":    func(a, b *ConnInfo) bool { return a.Pending > b.Pending },
		"msgs_to":    func(a, b *ConnInfo) bool { return a.OutMsgs > b.OutMsgs },
		"msgs_from":  func(a, b *ConnInfo) bool { return a.InMsgs > b.InMsgs },
		"bytes_to":   func(a, b *ConnInfo) bool { return a.OutBytes > b.OutBytes },
		"bytes_from": func(a, b *ConnInfo) bool { return a.InBytes > b.InBytes },
		"last":       func(a, b *ConnInfo) bool { return a.LastActivity.After(b.LastActivity) },
		"idle":       func(a, b *ConnInfo) bool { return a.LastActivity.Before(b.LastActivity) },
		"uptime":     func(a, b *ConnInfo) bool { return a.Start.Before(b.Start) },
		"reason":     func(a, b *ConnInfo) bool { return a.Reason < b.Reason },
		"stop": func(a, b *ConnInfo) bool {
			return a.Stop != nil && b.Stop != nil && a.Stop.After(*b.Stop)
		},
	}[by]
	if less == nil {
		less = func(a, b *ConnInfo) bool { return a.Cid < b.Cid }
	}
	sort.SliceStable(all, func(i, j int) bool { return less(all[i], all[j]) })
}

// Varz is the /varz document (the fields that apply to a frontdoor).
type Varz struct {
	ID                string            `json:"server_id"`
	Name              string            `json:"server_name"`
	Version           string            `json:"version"`
	Proto             int               `json:"proto"`
	GoVersion         string            `json:"go"`
	Host              string            `json:"host"`
	Port              int               `json:"port"`
	MaxConn           int               `json:"max_connections"`
	MaxSubs           int               `json:"max_subscriptions,omitempty"`
	PingInterval      time.Duration     `json:"ping_interval"`
	MaxPingsOut       int               `json:"ping_max"`
	HTTPHost          string            `json:"http_host"`
	HTTPPort          int               `json:"http_port"`
	HTTPBasePath      string            `json:"http_base_path"`
	HTTPSPort         int               `json:"https_port"`
	AuthRequired      bool              `json:"auth_required,omitempty"`
	AuthTimeout       float64           `json:"auth_timeout"`
	MaxControlLine    int32             `json:"max_control_line"`
	MaxPayload        int32             `json:"max_payload"`
	MaxPending        int64             `json:"max_pending"`
	Cluster           struct{}          `json:"cluster"`
	Gateway           struct{}          `json:"gateway"`
	LeafNode          struct{}          `json:"leaf"`
	MQTT              struct{}          `json:"mqtt"`
	Websocket         WebsocketVarz     `json:"websocket"`
	JetStream         struct{}          `json:"jetstream"`
	TLSTimeout        float64           `json:"tls_timeout"`
	WriteDeadline     time.Duration     `json:"write_deadline"`
	Start             time.Time         `json:"start"`
	Now               time.Time         `json:"now"`
	Uptime            string            `json:"uptime"`
	Mem               int64             `json:"mem"`
	Cores             int               `json:"cores"`
	MaxProcs          int               `json:"gomaxprocs"`
	CPU               float64           `json:"cpu"`
	Connections       int               `json:"connections"`
	TotalConnections  uint64            `json:"total_connections"`
	Routes            int               `json:"routes"`
	Remotes           int               `json:"remotes"`
	Leafs             int               `json:"leafnodes"`
	InMsgs            int64             `json:"in_msgs"`
	InBytes           int64             `json:"in_bytes"`
	InClientMsgs      int64             `json:"in_client_msgs"`
	InClientBytes     int64             `json:"in_client_bytes"`
	OutMsgs           int64             `json:"out_msgs"`
	OutBytes          int64             `json:"out_bytes"`
	OutClientMsgs     int64             `json:"out_client_msgs"`
	OutClientBytes    int64             `json:"out_client_bytes"`
	SlowConsumers     int64             `json:"slow_consumers"`
	StaleConnections  int64             `json:"stale_connections"`
	Subscriptions     uint32            `json:"subscriptions"`
	HTTPReqStats      map[string]uint64 `json:"http_req_stats"`
	ConfigLoadTime    time.Time         `json:"config_load_time"`
	SystemAccount     string            `json:"system_account,omitempty"`
	LameDuck          bool              `json:"lame_duck_mode,omitempty"`
	SlowConsumerStats struct {
		Clients  int64 `json:"clients"`
		Routes   int64 `json:"routes"`
		Gateways int64 `json:"gateways"`
		Leafs    int64 `json:"leafs"`
	} `json:"slow_consumer_stats"`
}

// Varz reports the server's configuration and counters.
func (s *Server) Varz() *Varz {
	cfg := s.Config()
	now := time.Now()
	host, port := s.advertise()
	v := &Varz{
		ID: s.id, Name: s.name, Version: Version, Proto: 1, GoVersion: runtime.Version(),
		Host: host, Port: port, MaxConn: cfg.MaxConnections, MaxSubs: cfg.MaxSubscriptions,
		PingInterval: cfg.PingInterval, MaxPingsOut: cfg.MaxPingsOut,
		HTTPHost: cfg.MonitorHost(), HTTPPort: s.httpPort(), AuthTimeout: 2, TLSTimeout: 2,
		MaxControlLine: cfg.MaxControlLine, MaxPayload: cfg.MaxPayload, MaxPending: cfg.MaxPending,
		WriteDeadline: cfg.WriteDeadline, Start: s.start, Now: now,
		Uptime: humanDuration(now.Sub(s.start)), Cores: runtime.NumCPU(), MaxProcs: runtime.GOMAXPROCS(0),
		TotalConnections: s.nextCID.Load(), Subscriptions: uint32(s.numSubs()),
		ConfigLoadTime: s.configLoadTime(), LameDuck: s.lameDuck.Load(),
		HTTPReqStats: s.httpStats(),
	}
	if s.auth != nil {
		v.AuthRequired, _ = s.auth.required(false)
		v.AuthTimeout = s.auth.timeout(false).Seconds()
		if p := s.auth.policy.Load(); p != nil {
			v.SystemAccount = p.SystemAccount
		}
	}
	if w := cfg.WebSocket; w.Enabled() {
		v.Websocket = WebsocketVarz{Advertise: w.Advertise, NoTLS: w.TLS == nil, SameOrigin: w.SameOrigin,
			AllowedOrigins: w.AllowedOrigins, Compression: w.Compression, HandshakeTimeout: w.HandshakeTimeout,
			JWTCookie: w.JWTCookie, UserCookie: w.UserCookie, PassCookie: w.PassCookie, TokenCookie: w.TokenCookie}
		v.Websocket.Host, v.Websocket.Port = s.wsAdvertise()
		if w.Advertise != "" {
			v.Websocket.Host, v.Websocket.Port = w.Host, w.Port
			if a, ok := s.WebSocketAddr().(*net.TCPAddr); ok {
				v.Websocket.Port = a.Port
			}
		}
	}
	v.Mem = readRSS()
	v.InMsgs, v.InBytes = s.totals.inMsgs.Load(), s.totals.inBytes.Load()
	v.OutMsgs, v.OutBytes = s.totals.outMsgs.Load(), s.totals.outBytes.Load()
	s.mu.Lock()
	v.Connections = len(s.clients)
	for _, c := range s.clients {
		v.InMsgs += c.statInMsgs.Load()
		v.InBytes += c.statInBytes.Load()
		c.out.mu.Lock()
		v.OutMsgs += c.out.msgs
		v.OutBytes += c.out.bytes
		c.out.mu.Unlock()
	}
	s.mu.Unlock()
	v.InClientMsgs, v.InClientBytes, v.OutClientMsgs, v.OutClientBytes = v.InMsgs, v.InBytes, v.OutMsgs, v.OutBytes
	v.SlowConsumers = s.slowConsumers.Load()
	v.SlowConsumerStats.Clients = v.SlowConsumers
	v.StaleConnections = s.staleConnections.Load()
	return v
}

// Subsz is the /subsz document.
type Subsz struct {
	ID           string      `json:"server_id"`
	Now          time.Time   `json:"now"`
	NumSubs      uint32      `json:"num_subscriptions"`
	NumCache     uint32      `json:"num_cache"`
	NumInserts   uint64      `json:"num_inserts"`
	NumRemoves   uint64      `json:"num_removes"`
	NumMatches   uint64      `json:"num_matches"`
	CacheHitRate float64     `json:"cache_hit_rate"`
	MaxFanout    uint32      `json:"max_fanout"`
	AvgFanout    float64     `json:"avg_fanout"`
	Total        int         `json:"total"`
	Offset       int         `json:"offset"`
	Limit        int         `json:"limit"`
	Subs         []SubDetail `json:"subscriptions_list,omitempty"`
}

// Subsz reports the subject trie; with subs it lists subscriptions
// (optionally only those matching test).
func (s *Server) Subsz(subs bool, test string, offset, limit int) *Subsz {
	sz := &Subsz{ID: s.id, Now: time.Now(), Offset: offset, Limit: limit}
	accounts := s.allAccounts()
	for _, a := range accounts {
		ins, rem, matches := a.sublist.Stats()
		sz.NumSubs += uint32(a.sublist.Count())
		sz.NumInserts += ins
		sz.NumRemoves += rem
		sz.NumMatches += matches
	}
	if sz.Limit <= 0 {
		sz.Limit = 1024
	}
	if !subs {
		return sz
	}
	var list []SubDetail
	each := func(fn func(*subscription)) {
		for _, a := range accounts {
			a.sublist.All(fn)
		}
	}
	each(func(sub *subscription) {
		if test != "" && !subject.Matches(sub.subject, test) {
			return
		}
		list = append(list, SubDetail{Account: sub.acc.name, Subject: sub.subject, Queue: sub.queue, Sid: sub.sid,
			Msgs: sub.delivered.Load(), Max: sub.max.Load(), Cid: sub.client.id})
	})
	sort.Slice(list, func(i, j int) bool {
		if list[i].Cid != list[j].Cid {
			return list[i].Cid < list[j].Cid
		}
		return list[i].Sid < list[j].Sid
	})
	sz.Total = len(list)
	if offset < len(list) {
		list = list[offset:]
	} else {
		list = nil
	}
	if len(list) > sz.Limit {
		list = list[:sz.Limit]
	}
	sz.Subs = list
	return sz
}

// httpStats counts requests per endpoint, as /varz's http_req_stats.
type httpStats struct {
	mu sync.Mutex
	m  map[string]uint64
}

func writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if cb := r.URL.Query().Get("callback"); cb != "" {
		w.Header().Set("Content-Type", "application/javascript")
		w.Write([]byte(cb + "("))
		w.Write(b)
		w.Write([]byte(")"))
		return
	}
	w.Write(b)
}

// numSubs counts the subscriptions of every account.
func (s *Server) numSubs() int {
	n := 0
	for _, a := range s.allAccounts() {
		n += a.sublist.Count()
	}
	return n
}
