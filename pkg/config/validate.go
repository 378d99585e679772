package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// check returns every range or consistency problem, keyed by the canonical
// configuration key so the loader can point at the line that set it.
func (s *Server) check() []problem {
	var ps []problem
	bad := func(key, format string, args ...any) {
		ps = append(ps, problem{key: key, msg: fmt.Sprintf(format, args...)})
	}

	if s.Host == "" {
		bad("host", "is empty: use 0.0.0.0 to listen on every interface")
	}
	if s.Port < -1 || s.Port > 65535 {
		bad("port", "%d is out of range: use 0..65535, or -1 for a free port", s.Port)
	}
	if strings.ContainsAny(s.ServerName, " \t\r\n") {
		bad("server_name", "%q contains white space, which monitoring and logs cannot show unambiguously", s.ServerName)
	}
	if strings.ContainsAny(s.ClientAdvertise, " \t\r\n") {
		bad("client_advertise", "%q contains white space: give host or host:port", s.ClientAdvertise)
	}
	if s.ClientAdvertiseProbe != "" {
		if _, _, _, err := s.AdvertiseProbe(); err != nil {
			bad("client_advertise_probe", "%v", err)
		}
		if _, _, err := net.SplitHostPort(s.ClientAdvertise); err == nil {
			bad("client_advertise", "%q names a port, but client_advertise_probe finds the port: give the host only", s.ClientAdvertise)
		}
	}
	for _, r := range s.Routers {
		if _, port, err := net.SplitHostPort(r); err != nil || port == "" {
			bad("routers", "%q is not host:port", r)
		}
	}
	for key, addr := range map[string]string{"mesh_listen": s.MeshListen, "mesh_advertise": s.MeshAdvertise} {
		if addr == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			bad(key, "%q is not host:port", addr)
		}
	}
	if s.HTTPPort < -1 || s.HTTPPort > 65535 {
		bad("http_port", "%d is out of range: use 0 to turn monitoring off, 1..65535, or -1 for a free port", s.HTTPPort)
	}

	switch {
	case s.MaxPayload <= 0:
		bad("max_payload", "%d must be positive", s.MaxPayload)
	case s.MaxPayload > maxPayloadLimit:
		bad("max_payload", "%d is more than the 64MB limit: larger messages should be chunked by the application", s.MaxPayload)
	case int64(s.MaxPayload) > s.MaxPending && s.MaxPending > 0:
		// A message larger than the pending buffer could never be delivered.
		ps = append(ps, problem{key: "max_payload", related: "max_pending",
			msg: fmt.Sprintf("%d is more than max_pending (%d): raise max_pending or lower max_payload", s.MaxPayload, s.MaxPending)})
	}
	if s.MaxControlLine <= 0 {
		bad("max_control_line", "%d must be positive", s.MaxControlLine)
	}
	if s.MaxConnections < 1 {
		bad("max_connections", "%d must be at least 1", s.MaxConnections)
	}
	if s.MaxPending <= 0 {
		bad("max_pending", "%d must be positive", s.MaxPending)
	}
	if s.MaxSubscriptions < 0 {
		bad("max_subscriptions", "%d must not be negative (0 means unlimited)", s.MaxSubscriptions)
	}

	if s.PingInterval <= 0 {
		bad("ping_interval", "%v must be positive", s.PingInterval)
	}
	if s.MaxPingsOut < 1 {
		bad("ping_max", "%d must be at least 1: it counts unanswered PINGs before the connection is closed", s.MaxPingsOut)
	}
	if s.WriteDeadline <= 0 {
		bad("write_deadline", "%v must be positive", s.WriteDeadline)
	}
	if s.LameDuckDuration <= 0 {
		bad("lame_duck_duration", "%v must be positive", s.LameDuckDuration)
	}
	if s.LameDuckGracePeriod < 0 {
		bad("lame_duck_grace_period", "%v must not be negative", s.LameDuckGracePeriod)
	}

	s.checkWebSocket(bad)

	seen := make(map[string]bool)
	for _, m := range s.Mappings {
		if seen[m.Source] {
			bad(mappingPath(m.Source), "is mapped twice: keep one entry")
		}
		seen[m.Source] = true
		ps = append(ps, checkMapping(m)...)
	}
	for _, a := range s.Accounts {
		for _, m := range a.Mappings {
			for _, p := range checkMapping(m) {
				p.key = "accounts"
				p.msg = fmt.Sprintf("account %s mapping %q: %s", a.Name, m.Source, p.msg)
				ps = append(ps, p)
			}
		}
	}
	if len(s.Operators) > 0 {
		if len(s.Accounts) > 0 || s.Auth.Set {
			bad("operator", "operator (JWT) mode takes accounts and users from account JWTs: remove accounts {} and authorization {}")
		}
		if s.Resolver.Type == "" {
			bad("operator", "needs a resolver: MEMORY with resolver_preload, or resolver { type: full, dir: \"./jwt\" }")
		}
	} else if s.Resolver.Type != "" {
		bad("resolver", "is for operator (JWT) mode: set operator too")
	}
	if s.SystemAccount != "" && s.SystemAccount != "$SYS" && len(s.Operators) == 0 && !s.hasAccount(s.SystemAccount) {
		bad("system_account", "%q is not an account of accounts {}", s.SystemAccount)
	}
	return ps
}

func (s *Server) hasAccount(name string) bool {
	for _, a := range s.Accounts {
		if a.Name == name {
			return true
		}
	}
	return false
}

// maxProbePorts bounds client_advertise_probe's range: each port is dialled
// in every probe round.
const maxProbePorts = 1024

// AdvertiseProbe parses client_advertise_probe, "host:lo-hi" (or
// "host:port"): the host to dial from inside the container (a name such as
// host.docker.internal, or an address) and the range of host ports.
func (s *Server) AdvertiseProbe() (host string, lo, hi int, err error) {
	return ParseProbe(s.ClientAdvertiseProbe)
}

// ParseProbe reads an advertise probe, "host:lo-hi" or "host:port".
func ParseProbe(spec string) (host string, lo, hi int, err error) {
	host, ports, err := net.SplitHostPort(spec)
	if err != nil || host == "" {
		return "", 0, 0, fmt.Errorf("%q is not host:port or host:lo-hi (e.g. host.docker.internal:4230-4239)", spec)
	}
	first, last, isRange := strings.Cut(ports, "-")
	if !isRange {
		last = first
	}
	lo, err1 := strconv.Atoi(first)
	hi, err2 := strconv.Atoi(last)
	switch {
	case err1 != nil || err2 != nil:
		return "", 0, 0, fmt.Errorf("%q: the ports %q are not a number or lo-hi", spec, ports)
	case lo < 1 || hi > 65535 || lo > hi:
		return "", 0, 0, fmt.Errorf("%q: the ports must run up within 1..65535", spec)
	case hi-lo+1 > maxProbePorts:
		return "", 0, 0, fmt.Errorf("%q: %d ports are more than the %d a probe round dials", spec, hi-lo+1, maxProbePorts)
	}
	return host, lo, hi, nil
}
