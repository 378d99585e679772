package test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

const systemConf = `
accounts {
	SYS: { users: [ { user: sys, password: sys } ] }
	A: { users: [ { user: a, password: a } ] }
}
system_account: SYS
`

// statszMsg is what nats-server (and `nats server list`) reads from
// $SYS.REQ.SERVER.PING.
type statszMsg struct {
	Server struct {
		Name string `json:"name"`
		ID   string `json:"id"`
		Ver  string `json:"ver"`
	} `json:"server"`
	Statsz struct {
		Connections   int `json:"connections"`
		Subscriptions int `json:"subscriptions"`
	} `json:"statsz"`
}

// pingAll sends a system request and collects the answers for a while.
func pingAll(t *testing.T, nc *nats.Conn, subj string, body []byte, want int) [][]byte {
	t.Helper()
	inbox := nats.NewInbox()
	sub := mustSyncSub(t, nc, inbox)
	var got [][]byte
	eventually(t, waitLong, func() error {
		require.NoError(t, nc.PublishRequest(subj, inbox, body))
		got = got[:0]
		for {
			m, err := sub.NextMsg(500 * time.Millisecond)
			if err != nil {
				break
			}
			got = append(got, m.Data)
		}
		if len(got) < want {
			return fmt.Errorf("%d answers to %s, want %d", len(got), subj, want)
		}
		return nil
	})
	return got
}

// Every frontdoor answers the system account's server pings, so a system
// user on one frontdoor sees the whole suite, as `nats server list` does.
func TestSystemServerPing(t *testing.T) {
	s := startAuthSuite(t, systemConf, 2)
	sys := connect(t, s.fds[0], nats.UserInfo("sys", "sys"))
	var ids []string
	for _, fd := range s.fds {
		ids = append(ids, getVarz(t, fd).ServerID)
	}
	sort.Strings(ids)

	var seen []string
	for _, b := range pingAll(t, sys, "$SYS.REQ.SERVER.PING", nil, 2) {
		var m statszMsg
		require.NoError(t, json.Unmarshal(b, &m), "%s", b)
		seen = append(seen, m.Server.ID)
		require.NotEmpty(t, m.Server.Ver)
	}
	sort.Strings(seen)
	require.Equal(t, ids, seen, "one statsz from each frontdoor")

	// Endpoint pings and a request to one server by id.
	for _, b := range pingAll(t, sys, "$SYS.REQ.SERVER.PING.VARZ", nil, 2) {
		var m struct {
			Data struct {
				ID string `json:"server_id"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal(b, &m))
		require.Contains(t, ids, m.Data.ID)
	}
	one := pingAll(t, sys, "$SYS.REQ.SERVER."+ids[1]+".CONNZ", []byte(`{"limit":10}`), 1)
	require.Len(t, one, 1)
	require.Contains(t, string(one[0]), `"connections"`)

	// Another account reaches none of it.
	a := connect(t, s.fds[1], nats.UserInfo("a", "a"))
	_, err := a.Request("$SYS.REQ.SERVER.PING", nil, 500*time.Millisecond)
	require.ErrorIs(t, err, nats.ErrNoResponders)
}

// The nats CLI itself, with system credentials: `nats server list` finds
// both frontdoors and `nats server report connections` lists clients.
func TestSystemNatsCLI(t *testing.T) {
	cli := filepath.Join(testkit.RepoRoot(t), ".tools", "bin", "nats")
	s := startAuthSuite(t, systemConf, 2)
	connect(t, s.fds[1], nats.UserInfo("a", "a"), nats.Name("report-me"))
	run := func(args ...string) string {
		all := append([]string{"--no-context", "-s", s.fds[0].URL(), "--user", "sys", "--password", "sys"}, args...)
		var out []byte
		eventually(t, waitLong, func() error {
			var err error
			out, err = exec.Command(cli, all...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("nats %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			return nil
		})
		return string(out)
	}
	list := run("server", "list", "2")
	for _, fd := range s.fds {
		require.Contains(t, list, getVarz(t, fd).ServerID[:8], "nats server list names every frontdoor:\n%s", list)
	}
	report := run("server", "report", "connections")
	require.Contains(t, report, "report-me", "nats server report connections:\n%s", report)
	// nats server info asks one server, named by id, for its VARZ.
	other := getVarz(t, s.fds[1])
	info := run("server", "info", other.ServerID)
	t.Logf("nats server info:\n%s", info)
	require.Contains(t, info, other.ServerID, "nats server info:\n%s", info)
	require.Regexp(t, `Connections:\s+1\b`, info, "the other frontdoor's one client")
	require.Regexp(t, `Auth Required:\s+true`, info)
}

// Connect and disconnect events in the system account, from any frontdoor.
func TestSystemConnectionEvents(t *testing.T) {
	s := startAuthSuite(t, systemConf, 2)
	sys := connect(t, s.fds[0], nats.UserInfo("sys", "sys"))
	events := mustSyncSub(t, sys, "$SYS.ACCOUNT.*.*")
	type event struct {
		Type   string `json:"type"`
		Client struct {
			Acc  string `json:"acc"`
			User string `json:"user"`
			Name string `json:"name"`
		} `json:"client"`
		Reason string `json:"reason"`
	}
	var got event
	eventually(t, waitLong, func() error {
		// Interest travels to the other frontdoor through the router.
		nc := connect(t, s.fds[1], nats.UserInfo("a", "a"), nats.Name("watched"))
		m, err := events.NextMsg(500 * time.Millisecond)
		if err != nil {
			nc.Close()
			return err
		}
		require.Equal(t, "$SYS.ACCOUNT.A.CONNECT", m.Subject)
		require.NoError(t, json.Unmarshal(m.Data, &got))
		nc.Close()
		return nil
	})
	require.Equal(t, "io.nats.server.advisory.v1.client_connect", got.Type)
	require.Equal(t, "A", got.Client.Acc)
	require.Equal(t, "a", got.Client.User)
	require.Equal(t, "watched", got.Client.Name)
	m, err := events.NextMsg(waitLong)
	require.NoError(t, err)
	require.Equal(t, "$SYS.ACCOUNT.A.DISCONNECT", m.Subject)
	got = event{}
	require.NoError(t, json.Unmarshal(m.Data, &got))
	require.Equal(t, "io.nats.server.advisory.v1.client_disconnect", got.Type)
	require.Equal(t, "Client Closed", got.Reason)

	// Account A cannot listen to the system account's events.
	a := connect(t, s.fds[0], nats.UserInfo("a", "a"))
	aSub := mustSyncSub(t, a, "$SYS.>")
	connect(t, s.fds[1], nats.UserInfo("a", "a")).Close()
	expectNoMsg(t, aSub)
}

// $SYS.REQ.USER.INFO answers, in any account, who the requester is and
// what it may do, in nats-server's JSON (nats account info shows it);
// a publish permission still has to allow the subject.
func TestSystemUserInfo(t *testing.T) {
	conf := `
accounts {
	SYS: { users: [ { user: sys, password: sys } ] }
	A: { users: [
		{ user: a, password: a, permissions: {
			publish: { allow: ["foo.>", "$SYS.REQ.USER.INFO"] }
			subscribe: { deny: ["bar"] }
			allow_responses: { max: 2, expires: "1m" } } }
		{ user: b, password: b, permissions: { publish: "foo" } }
	] }
}
system_account: SYS
`
	s := startAuthSuite(t, conf, 1)
	a := connect(t, s.fds[0], nats.UserInfo("a", "a"))
	m, err := a.Request("$SYS.REQ.USER.INFO", nil, waitLong)
	require.NoError(t, err)
	var got struct {
		Server struct {
			ID string `json:"id"`
		} `json:"server"`
		Data map[string]any `json:"data"`
	}
	require.NoError(t, json.Unmarshal(m.Data, &got), "%s", m.Data)
	require.Equal(t, getVarz(t, s.fds[0]).ServerID, got.Server.ID)
	want := map[string]any{"user": "a", "account": "A", "account_name": "A", "permissions": map[string]any{
		"publish":   map[string]any{"allow": []any{"foo.>", "$SYS.REQ.USER.INFO"}},
		"subscribe": map[string]any{"deny": []any{"bar"}},
		"responses": map[string]any{"max": float64(2), "ttl": float64(time.Minute)},
	}}
	require.Equal(t, want, got.Data, "nats-server v2.15.2's answer to the same configuration")

	b := connect(t, s.fds[0], nats.UserInfo("b", "b"))
	errs := make(chan error, 1)
	b.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err })
	_, err = b.Request("$SYS.REQ.USER.INFO", nil, 500*time.Millisecond)
	require.Error(t, err)
	require.ErrorContains(t, <-errs, `Permissions Violation for Publish to "$SYS.REQ.USER.INFO"`)
}
