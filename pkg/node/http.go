package node

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-io/switchyard/pkg/subject"
)

// StartMonitoring serves /healthz, /varz, /connz and /subsz on http_port
// (nothing when it is 0).
func (s *Server) StartMonitoring() error {
	cfg := s.Config()
	if cfg.HTTPPort == 0 {
		return nil
	}
	port := cfg.HTTPPort
	if port == -1 {
		port = 0
	}
	host := cfg.MonitorHost()
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening for monitoring on %s: %w (http_port)", addr, err)
	}
	mux := http.NewServeMux()
	handle := func(path string, h func(http.ResponseWriter, *http.Request)) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			s.countRequest(path)
			h(w, r)
		})
	}
	handle("/", s.handleRoot)
	handle("/healthz", s.handleHealthz)
	handle("/varz", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, r, s.Varz()) })
	handle("/connz", s.handleConnz)
	handle("/subsz", s.handleSubsz)
	handle("/subscriptionsz", s.handleSubsz)
	handle("/routez", s.handleRoutez)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.mu.Lock()
	s.httpListener, s.httpServer = l, srv
	s.mu.Unlock()
	s.log.Infof("Starting http monitor on %s", l.Addr())
	go srv.Serve(l)
	return nil
}

// StartProfiling serves Go's pprof handlers (/debug/pprof/) on prof_port,
// as nats-server does, for CPU and heap profiles of a live frontdoor.
func (s *Server) StartProfiling() error {
	cfg := s.Config()
	if cfg.ProfPort == 0 {
		return nil
	}
	addr := net.JoinHostPort(cfg.MonitorHost(), strconv.Itoa(cfg.ProfPort))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening for profiling on %s: %w (prof_port)", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.log.Infof("Starting profiling on http://%s/debug/pprof/", l.Addr())
	go (&http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}).Serve(l)
	return nil
}

// MonitorAddr is the monitoring listener's address (nil when off).
func (s *Server) MonitorAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.httpListener == nil {
		return nil
	}
	return s.httpListener.Addr()
}

func (s *Server) httpPort() int {
	if a, ok := s.MonitorAddr().(*net.TCPAddr); ok {
		return a.Port
	}
	return s.Config().HTTPPort
}

func (s *Server) countRequest(path string) {
	s.reqStats.mu.Lock()
	if s.reqStats.m == nil {
		s.reqStats.m = map[string]uint64{}
	}
	s.reqStats.m[path]++
	s.reqStats.mu.Unlock()
}

func (s *Server) httpStats() map[string]uint64 {
	s.reqStats.mu.Lock()
	defer s.reqStats.mu.Unlock()
	out := make(map[string]uint64, len(s.reqStats.m))
	for k, v := range s.reqStats.m {
		out[k] = v
	}
	return out
}

func (s *Server) handleRoot(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html")
	fmt.Fprintf(w, `<html><body><h1>Switchyard frontdoor %s</h1>
<a href="varz">varz</a><br><a href="connz">connz</a><br><a href="subsz">subsz</a><br><a href="healthz">healthz</a>
</body></html>`, SwitchyardVersion)
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	if s.shutdown.Load() || s.lameDuck.Load() {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"status":"unavailable","error":"server is shutting down"}`))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"status":"ok"}`))
}

func (s *Server) handleConnz(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	o := ConnzOptions{Sort: q.Get("sort"), State: q.Get("state")}
	switch q.Get("subs") {
	case "1", "true":
		o.Subs = true
	case "detail":
		o.Detail = true
	}
	var err error
	if o.Offset, err = intParam(q.Get("offset")); err == nil {
		o.Limit, err = intParam(q.Get("limit"))
	}
	if err == nil && q.Get("cid") != "" {
		var cid int
		cid, err = intParam(q.Get("cid"))
		o.CID = uint64(cid)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, r, s.Connz(o))
}

func (s *Server) handleSubsz(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	subs := q.Get("subs") == "1" || q.Get("subs") == "true" || q.Get("subs") == "detail"
	offset, err := intParam(q.Get("offset"))
	limit, err2 := intParam(q.Get("limit"))
	if err != nil || err2 != nil {
		http.Error(w, "offset and limit must be numbers", http.StatusBadRequest)
		return
	}
	test := q.Get("test")
	if test != "" && !subject.ValidPublish([]byte(test)) {
		http.Error(w, "invalid test subject, must be a literal subject", http.StatusBadRequest)
		return
	}
	writeJSON(w, r, s.Subsz(subs, test, offset, limit))
}

func intParam(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad number %q", v)
	}
	return n, nil
}

// readRSS reads this process's resident set size (Linux), 0 elsewhere.
func readRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if f := strings.Fields(string(line)); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}
