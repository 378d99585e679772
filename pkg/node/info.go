package node

import (
	"encoding/json"
	"runtime"
)

// Version is the nats-server version whose behaviour Switchyard matches.
// Clients gate features on the INFO version (nats.go's JetStream API, for
// one), so we report the reference version and name ourselves separately.
const Version = "2.15.2"

// SwitchyardVersion is this build's own version.
var SwitchyardVersion = "0.1.0-dev"

// serverInfo is the INFO JSON, fields in nats-server's order.
type serverInfo struct {
	ID            string   `json:"server_id"`
	Name          string   `json:"server_name"`
	Version       string   `json:"version"`
	Proto         int      `json:"proto"`
	GoVersion     string   `json:"go"`
	Host          string   `json:"host"`
	Port          int      `json:"port"`
	Headers       bool     `json:"headers"`
	AuthRequired  bool     `json:"auth_required,omitempty"`
	TLSRequired   bool     `json:"tls_required,omitempty"`
	TLSVerify     bool     `json:"tls_verify,omitempty"`
	TLSAvailable  bool     `json:"tls_available,omitempty"`
	MaxPayload    int32    `json:"max_payload"`
	ClientID      uint64   `json:"client_id,omitempty"`
	ClientIP      string   `json:"client_ip,omitempty"`
	Nonce         string   `json:"nonce,omitempty"`
	ConnectURLs   []string `json:"connect_urls,omitempty"`
	LameDuckMode  bool     `json:"ldm,omitempty"`
	ConnectInfo   bool     `json:"connect_info,omitempty"`
	RemoteAccount string   `json:"remote_account,omitempty"`
	Switchyard    string   `json:"switchyard_version,omitempty"`
}

func (s *Server) baseInfo() serverInfo {
	cfg := s.Config()
	host, port := s.advertise()
	return serverInfo{
		ID:          s.id,
		Name:        s.name,
		Version:     Version,
		Proto:       1,
		GoVersion:   runtime.Version(),
		Host:        host,
		Port:        port,
		Headers:     true,
		MaxPayload:  cfg.MaxPayload,
		ConnectURLs: s.connectURLs(),
		Switchyard:  SwitchyardVersion,
	}
}

// infoLine renders "INFO {...} \r\n" (nats-server puts a blank before CRLF).
func infoLine(info *serverInfo) []byte {
	js, _ := json.Marshal(info) // a struct of plain fields cannot fail
	b := make([]byte, 0, len(js)+8)
	b = append(b, "INFO "...)
	b = append(b, js...)
	return append(b, " \r\n"...)
}
