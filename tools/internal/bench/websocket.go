package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// StartWebSocketSingle starts one server with a plain ws:// listener
// (websocket { port, no_tls: true }) beside its client port; Pub and Sub
// are that listener (natscli connects with a ws:// URL), while probes and
// monitoring use the server's client and monitoring ports as usual.
func StartWebSocketSingle(ctx context.Context, side string, bin string) (*Topology, error) {
	t, dir, err := scratchTopology(side, "ws")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		t.Stop()
		return nil, err
	}
	conf := filepath.Join(dir, "ws.conf")
	data := fmt.Sprintf("websocket {\n  host: \"127.0.0.1\"\n  port: %d\n  no_tls: true\n}\n", ports[2])
	if err := os.WriteFile(conf, []byte(data), 0o600); err != nil {
		t.Stop()
		return nil, err
	}
	s, err := startServer(ctx, side, side+" server", bin, ports[0], ports[1], []string{"-c", conf})
	if err != nil {
		t.Stop()
		return nil, err
	}
	t.Pub, t.Sub = s, s
	t.WebSocketURL = fmt.Sprintf("ws://127.0.0.1:%d", ports[2])
	return t, nil
}

// scratchTopology is an empty topology with a temporary directory of its
// own (config files, certificates, stores), removed when it stops.
func scratchTopology(side, name string) (*Topology, string, error) {
	dir, err := os.MkdirTemp("", "switchyard-bench-"+name+"-")
	if err != nil {
		return nil, "", err
	}
	return &Topology{Side: side, cleanup: func() { os.RemoveAll(dir) }}, dir, nil
}

// overWebSocket is t with its clients' URL the WebSocket listener's.
func (t *Topology) overWebSocket() *Topology {
	ws := *t.Pub
	ws.url = t.WebSocketURL
	wt := *t
	wt.Pub, wt.Sub = &ws, &ws
	return &wt
}
