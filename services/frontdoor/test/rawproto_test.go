package test

// Raw client-protocol tests: byte scripts sent over plain TCP.
//
// TestRawProtoDifferential sends every script to the reference nats-server
// and to a frontdoor and requires the same answers (INFO compared by its keys
// and a few values) and the same closes. TestRawProtoExact needs no
// reference: it checks the frontdoor against the exact bytes written in the
// table, which the differential test also checks against nats-server, so the
// table cannot drift from the reference unnoticed.
//
// Scripts run concurrently, each worker on its own servers, so subjects of
// one script never meet another's. Each step is followed by a fixed read
// window. Servers send their first PING about 2 s after connecting; the
// scripts are shorter, and a slow second try drops it (see rpNormLines).

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

const (
	// rpWindow is how long each step's answers are collected. Loopback
	// answers take well under a millisecond; the window is what decides
	// that nothing more (and no close) is coming.
	rpWindow = 300 * time.Millisecond
	// rpWorkers is how many server sets run scripts side by side.
	rpWorkers = 6
)

// rpStep sends bytes on one of the script's connections.
type rpStep struct {
	conn int
	send string
}

// rpWant is what one connection must receive after its INFO, all steps
// together, and whether the server must have closed it.
type rpWant struct {
	out    string
	closed bool
}

type rpCase struct {
	name  string
	steps []rpStep
	// want per connection; nil: compared with the reference only.
	want []rpWant
	// anyOrder compares each step's output as a set of protocol messages:
	// neither server orders deliveries to different subscriptions.
	anyOrder bool
}

// rpOn0 makes steps on connection 0.
func rpOn0(sends ...string) []rpStep {
	s := make([]rpStep, len(sends))
	for i, b := range sends {
		s[i] = rpStep{0, b}
	}
	return s
}

func rpOpen(out string) []rpWant   { return []rpWant{{out: out}} }
func rpClosed(out string) []rpWant { return []rpWant{{out: out, closed: true}} }

const (
	rpQuiet  = `CONNECT {"verbose":false,"pedantic":false}` + "\r\n"
	rpQuietH = `CONNECT {"verbose":false,"pedantic":false,"headers":true}` + "\r\n"

	rpErrUnknown = "-ERR 'Unknown Protocol Operation'\r\n"
	rpErrMCL     = "-ERR 'maximum control line exceeded'\r\n"
)

// rpArgs returns PUB arguments "<subject> 0" exactly n bytes long.
func rpArgs(n int) string { return "s" + strings.Repeat("x", n-3) + " 0" }

func rpCases() []rpCase {
	mb := strings.Repeat("m", 1<<20)
	big := strings.Repeat("0123456789", 20000)
	return []rpCase{
		// --- -ERR and close ---
		{name: "unknown op", steps: rpOn0(rpQuiet + "FOO bar\r\n"), want: rpClosed(rpErrUnknown)},
		{name: "unknown op before its newline", steps: rpOn0(rpQuiet + "XYZ"), want: rpClosed(rpErrUnknown)},
		{name: "MSG from a client", steps: rpOn0(rpQuiet + "MSG foo 1 1\r\nx\r\n"), want: rpClosed(rpErrUnknown)},
		{name: "empty line", steps: rpOn0(rpQuiet + "\r\n"), want: rpClosed(rpErrUnknown)},
		{name: "op without its blank", steps: rpOn0(rpQuiet + "PUB\r\n"), want: rpClosed(rpErrUnknown)},
		{name: "HPUB alone", steps: rpOn0(rpQuietH + "HPUB\r\n"), want: rpClosed(rpErrUnknown)},
		{name: "-ERR alone", steps: rpOn0(rpQuiet + "-ERR\r\n"), want: rpClosed(rpErrUnknown)},
		{name: "payload longer than size", steps: rpOn0(rpQuiet + "PUB foo 2\r\nabc\r\n"), want: rpClosed(rpErrUnknown)},
		{name: "payload shorter than size", steps: rpOn0(rpQuiet + "PUB foo 4\r\nab\r\nPING\r\n"), want: rpClosed(rpErrUnknown)},
		{name: "payload mismatch seen before the rest", steps: rpOn0(rpQuiet + "PUB foo 2\r\nabX"), want: rpClosed(rpErrUnknown)},
		{name: "control line 4096", steps: rpOn0(rpQuiet + "PUB " + rpArgs(4096) + "\r\n\r\nPING\r\n"), want: rpOpen("PONG\r\n")},
		{name: "control line 4096 split", steps: rpOn0(rpQuiet+"PUB "+rpArgs(4096)[:3000], rpArgs(4096)[3000:]+"\r\n\r\nPING\r\n"), want: rpOpen("PONG\r\n")},
		{name: "control line 4096 split after CR", steps: rpOn0(rpQuiet+"PUB "+rpArgs(4096)+"\r", "\n\r\nPING\r\n"), want: rpOpen("PONG\r\n")},
		{name: "control line 4096 after blanks", steps: rpOn0(rpQuiet + "PUB \t \t" + rpArgs(4096) + "\r\n\r\nPING\r\n"), want: rpOpen("PONG\r\n")},
		{name: "control line 4097", steps: rpOn0(rpQuiet + "PUB " + rpArgs(4097) + "\r\n\r\n"), want: rpClosed(rpErrMCL)},
		{name: "control line 4097 before its newline", steps: rpOn0(rpQuiet + "PUB " + rpArgs(4097)), want: rpClosed(rpErrMCL)},
		{name: "control line 4097 split", steps: rpOn0(rpQuiet+"PUB "+rpArgs(4097)[:4000], rpArgs(4097)[4000:]), want: rpClosed(rpErrMCL)},
		{name: "control line 4097 CONNECT", steps: rpOn0(`CONNECT {"name":"` + strings.Repeat("n", 4097-11) + `"}` + "\r\n"), want: rpClosed(rpErrMCL)},
		{name: "PING ignores a long tail", steps: rpOn0(rpQuiet + "PING " + strings.Repeat("x", 5000) + "\r\n"), want: rpOpen("PONG\r\n")},
		{name: "max payload", steps: rpOn0(rpQuiet + "PUB foo 1048577\r\n"), want: rpClosed("-ERR 'Maximum Payload Violation'\r\n")},
		{name: "max payload exactly", steps: rpOn0(rpQuiet + "PUB foo 1048576\r\n" + mb + "\r\nPING\r\n"), want: rpOpen("PONG\r\n")},
		{name: "no_responders without headers", steps: rpOn0(`CONNECT {"no_responders":true}` + "\r\n"),
			want: rpClosed("-ERR 'no responders requires headers support'\r\n")},

		// --- closed without -ERR ---
		{name: "HPUB with headers false", steps: rpOn0(`CONNECT {"verbose":false,"headers":false}` + "\r\nHPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n"), want: rpClosed("")},
		{name: "HPUB before CONNECT", steps: rpOn0("HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n"), want: rpClosed("")},
		{name: "malformed CONNECT JSON", steps: rpOn0("CONNECT {bad\r\n"), want: rpClosed("")},
		{name: "CONNECT not an object", steps: rpOn0("CONNECT []\r\n"), want: rpClosed("")},
		{name: "CONNECT with nothing", steps: rpOn0("CONNECT\r\n"), want: rpClosed("")},
		{name: "PUB missing size", steps: rpOn0(rpQuiet + "PUB foo\r\n"), want: rpClosed("")},
		{name: "PUB non-numeric size", steps: rpOn0(rpQuiet + "PUB foo bar\r\n"), want: rpClosed("")},
		{name: "PUB size of 10 digits", steps: rpOn0(rpQuiet + "PUB foo 1234567890\r\n"), want: rpClosed("")},
		{name: "PUB too many arguments", steps: rpOn0(rpQuiet + "PUB a b c 1\r\nx\r\n"), want: rpClosed("")},
		{name: "PUB size followed by a second CR", steps: rpOn0(rpQuiet + "PUB foo 1\r\r\nx\r\n"), want: rpClosed("")},
		{name: "HPUB header larger than total", steps: rpOn0(rpQuietH + "HPUB foo 3 2\r\nxy\r\n"), want: rpClosed("")},
		{name: "SUB one argument", steps: rpOn0(rpQuiet + "SUB foo\r\n"), want: rpClosed("")},
		{name: "UNSUB three arguments", steps: rpOn0(rpQuiet + "UNSUB 1 2 3\r\n"), want: rpClosed("")},
		{name: "client sends -ERR", steps: rpOn0(rpQuiet + "-ERR 'oops'\r\n"), want: rpClosed("")},
		{name: "INFO that is not JSON", steps: rpOn0(rpQuiet + "INFO foo\r\n"), want: rpClosed("")},

		// --- subjects ---
		{name: "pedantic invalid publish subject",
			steps: rpOn0(`CONNECT {"verbose":false,"pedantic":true}` + "\r\nSUB foo.* 1\r\nPUB foo.* 1\r\nx\r\nPUB foo..bar 1\r\ny\r\nPING\r\n"),
			// Refused, yet delivered: nats-server only reports it.
			want: rpOpen("-ERR 'Invalid Publish Subject'\r\nMSG foo.* 1 1\r\nx\r\n-ERR 'Invalid Publish Subject'\r\nPONG\r\n")},
		{name: "pedantic verbose invalid publish subject", steps: rpOn0("CONNECT {}\r\nPUB foo..bar 1\r\nx\r\nPING\r\n"),
			want: rpOpen("+OK\r\n-ERR 'Invalid Publish Subject'\r\n+OK\r\nPONG\r\n")},
		{name: "non-pedantic publish subject delivered literally",
			steps: rpOn0(rpQuiet + "SUB foo.* 1\r\nPUB foo.* 1\r\nx\r\nPUB foo..bar 1\r\ny\r\nPING\r\n"),
			want:  rpOpen("MSG foo.* 1 1\r\nx\r\nPONG\r\n")},
		{name: "pedantic verbose invalid publish subject delivered",
			steps: rpOn0(`CONNECT {"verbose":true,"pedantic":true}` + "\r\nSUB foo.* 2\r\nPUB foo.* 1\r\nx\r\nPING\r\n"),
			want:  rpOpen("+OK\r\n+OK\r\n-ERR 'Invalid Publish Subject'\r\n+OK\r\nMSG foo.* 2 1\r\nx\r\nPONG\r\n")},
		{name: "no-responders for a subject with an empty token",
			// Matches nothing, so the request has no responders; the 503
			// goes to the first own subscription matching the reply, and
			// nats-server collects a top-level '>' first.
			steps: rpOn0(`CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true}` + "\r\nSUB _INBOX.a 1\r\nSUB > 2\r\nPUB foo..bar _INBOX.a 1\r\nx\r\nPING\r\n"),
			want:  rpOpen("HMSG _INBOX.a 2 40 40\r\nNATS/1.0 503\r\nNats-Subject: foo..bar\r\n\r\n\r\nPONG\r\n")},
		{name: "invalid SUB subject", steps: rpOn0(rpQuiet + "SUB foo..bar 1\r\nSUB foo. 2\r\nSUB >.a 3\r\nPING\r\n"),
			want: rpOpen("-ERR 'Invalid Subject'\r\n-ERR 'Invalid Subject'\r\n-ERR 'Invalid Subject'\r\nPONG\r\n")},
		{name: "invalid SUB subject verbose", steps: rpOn0("CONNECT {}\r\nSUB foo..bar 1\r\nPING\r\n"),
			want: rpOpen("+OK\r\n-ERR 'Invalid Subject'\r\nPONG\r\n")},

		// --- verbose ---
		{name: "verbose +OK for each op",
			steps: rpOn0(`CONNECT {"verbose":true,"pedantic":false,"headers":true}` + "\r\nSUB foo 1\r\nSUB foo q 2\r\nPUB bar 1\r\nx\r\nHPUB bar 12 12\r\nNATS/1.0\r\n\r\n\r\nUNSUB 1\r\nUNSUB 2 5\r\nPONG\r\nPING\r\n"),
			want:  rpOpen("+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\nPONG\r\n")},
		{name: "verbose and pedantic by default", steps: rpOn0("CONNECT {}\r\nPING\r\n"), want: rpOpen("+OK\r\nPONG\r\n")},
		{name: "PUB before CONNECT answered +OK", steps: rpOn0("PUB foo 1\r\nx\r\nPING\r\n"), want: rpOpen("+OK\r\nPONG\r\n")},
		{name: "PING before CONNECT", steps: rpOn0("PING\r\n"), want: rpOpen("PONG\r\n")},
		{name: "UNSUB unknown sid verbose", steps: rpOn0("CONNECT {}\r\nUNSUB 99\r\nPING\r\n"), want: rpOpen("+OK\r\n+OK\r\nPONG\r\n")},
		{name: "SUB reusing an active sid verbose", steps: rpOn0("CONNECT {}\r\nSUB foo 1\r\nSUB bar 1\r\nPING\r\n"),
			want: rpOpen("+OK\r\n+OK\r\n+OK\r\nPONG\r\n")},
		{name: "CONNECT twice", steps: rpOn0("CONNECT {}\r\nCONNECT {\"verbose\":false}\r\nSUB a 1\r\nPING\r\n"), want: rpOpen("+OK\r\nPONG\r\n")},

		// --- lenient syntax ---
		{name: "lower-case ops",
			steps: rpOn0("connect {\"verbose\":false,\"headers\":true}\r\nsub foo 1\r\npub foo 2\r\nhi\r\nhpub foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\nunsub 1\r\npub foo 1\r\nx\r\nping\r\n"),
			want:  rpOpen("MSG foo 1 2\r\nhi\r\nHMSG foo 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPONG\r\n")},
		{name: "tabs and runs of blanks",
			steps: rpOn0("CONNECT\t{\"verbose\":false}\r\nSUB\tfoo \t q\t 1\r\nPUB\t foo\t2  \r\nhi\r\nPING\r\n"),
			want:  rpOpen("MSG foo 1 2\r\nhi\r\nPONG\r\n")},
		{name: "bare LF line endings", steps: rpOn0("CONNECT {\"verbose\":false}\nSUB foo 1\nPUB foo 2\nhi\r\nPING\n"),
			want: rpOpen("MSG foo 1 2\r\nhi\r\nPONG\r\n")},
		{name: "CONNECT without a blank", steps: rpOn0(`CONNECT{"verbose":false}` + "\r\nPING\r\n"), want: rpOpen("PONG\r\n")},
		{name: "text after PING and +OK", steps: rpOn0(rpQuiet + "PINGxyz\r\n+OKAY\r\n+OK\r\nPING\r\n"), want: rpOpen("PONG\r\nPONG\r\n")},
		{name: "INFO from a client", steps: rpOn0(rpQuiet + "INFO {}\r\nINFO null\r\nPING\r\n"), want: rpOpen("PONG\r\n")},
		{name: "payload split across writes", steps: rpOn0(rpQuiet+"SUB foo 1\r\nPUB foo 5\r\nhe", "llo\r", "\nPING\r\n"),
			want: rpOpen("MSG foo 1 5\r\nhello\r\nPONG\r\n")},

		// --- delivery ---
		{name: "SUB reusing an active sid is ignored",
			steps: rpOn0(rpQuiet + "SUB foo 1\r\nSUB bar 1\r\nPUB bar 1\r\nx\r\nPUB foo 1\r\ny\r\nPING\r\n"),
			want:  rpOpen("MSG foo 1 1\r\ny\r\nPONG\r\n")},
		{name: "MSG and HMSG formatting",
			steps: rpOn0(rpQuietH + "SUB foo 1\r\nPUB foo 2\r\nhi\r\nPUB foo r.1 2\r\nhi\r\nHPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\nHPUB foo r.2 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\nPUB foo 0\r\n\r\nPING\r\n"),
			want: rpOpen("MSG foo 1 2\r\nhi\r\nMSG foo 1 r.1 2\r\nhi\r\nHMSG foo 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n" +
				"HMSG foo 1 r.2 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\nMSG foo 1 0\r\n\r\nPONG\r\n")},
		{name: "HPUB to a subscriber without headers",
			steps: []rpStep{{0, rpQuiet + "SUB foo 1\r\nPING\r\n"}, {1, rpQuietH + "HPUB foo 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\nPING\r\n"}},
			want:  []rpWant{{out: "PONG\r\nMSG foo 1 2\r\nhi\r\n"}, {out: "PONG\r\n"}}},
		{name: "no-responders 503",
			steps: rpOn0(`CONNECT {"verbose":false,"headers":true,"no_responders":true}` + "\r\nSUB _INBOX.r1 1\r\nPUB svc.req _INBOX.r1 2\r\nhi\r\nPING\r\n"),
			want:  rpOpen("HMSG _INBOX.r1 1 39 39\r\nNATS/1.0 503\r\nNats-Subject: svc.req\r\n\r\n\r\nPONG\r\n")},
		{name: "no-responders without a reply subscription",
			steps: rpOn0(`CONNECT {"verbose":false,"headers":true,"no_responders":true}` + "\r\nPUB svc.req _INBOX.r2 0\r\n\r\nPING\r\n"),
			want:  rpOpen("PONG\r\n")},
		{name: "no-responders not sent when someone listens",
			steps: []rpStep{
				{1, rpQuiet + "SUB svc.req 9\r\nPING\r\n"},
				{0, `CONNECT {"verbose":false,"headers":true,"no_responders":true}` + "\r\nSUB _INBOX.r3 1\r\nPUB svc.req _INBOX.r3 0\r\n\r\nPING\r\n"}},
			want: []rpWant{{out: "PONG\r\n"}, {out: "PONG\r\nMSG svc.req 9 _INBOX.r3 0\r\n\r\n"}}},
		{name: "auto-unsubscribe",
			steps: rpOn0(rpQuiet + "SUB foo 1\r\nUNSUB 1 2\r\nPUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nPUB foo 1\r\nc\r\nPING\r\n"),
			want:  rpOpen("MSG foo 1 1\r\na\r\nMSG foo 1 1\r\nb\r\nPONG\r\n")},
		{name: "auto-unsubscribe after deliveries",
			steps: rpOn0(rpQuiet + "SUB foo 1\r\nPUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nUNSUB 1 2\r\nPUB foo 1\r\nc\r\nPING\r\n"),
			want:  rpOpen("MSG foo 1 1\r\na\r\nMSG foo 1 1\r\nb\r\nPONG\r\n")},
		{name: "UNSUB with a bad max ends now",
			steps: rpOn0(rpQuiet + "SUB foo 1\r\nUNSUB 1 abc\r\nPUB foo 1\r\nx\r\nPING\r\n"),
			want:  rpOpen("PONG\r\n")},
		{name: "echo false",
			steps: []rpStep{
				{1, rpQuiet + "SUB foo 7\r\nPING\r\n"},
				{0, `CONNECT {"verbose":false,"echo":false}` + "\r\nSUB foo 1\r\nPUB foo 1\r\nx\r\nPING\r\n"}},
			want: []rpWant{{out: "PONG\r\n"}, {out: "PONG\r\nMSG foo 7 1\r\nx\r\n"}}},
		{name: "echo by default", steps: rpOn0(rpQuiet + "SUB foo 1\r\nPUB foo 1\r\nx\r\nPING\r\n"), want: rpOpen("MSG foo 1 1\r\nx\r\nPONG\r\n")},
		{name: "queue group and plain subscriber",
			steps: []rpStep{
				{0, rpQuiet + "SUB q.x grp 1\r\nSUB q.x 2\r\nPING\r\n"},
				{1, rpQuiet + "PUB q.x 1\r\nm\r\nPING\r\n"}},
			want: []rpWant{{out: "PONG\r\nMSG q.x 2 1\r\nm\r\nMSG q.x 1 1\r\nm\r\n"}, {out: "PONG\r\n"}}},
		{name: "verbose +OK before MSG",
			steps: rpOn0(`CONNECT {"verbose":true,"pedantic":false}` + "\r\nSUB foo 1\r\nPUB foo 1\r\nx\r\nPING\r\n"),
			want:  rpOpen("+OK\r\n+OK\r\n+OK\r\nMSG foo 1 1\r\nx\r\nPONG\r\n")},
		{name: "HPUB with an empty header block", steps: rpOn0(rpQuietH + "SUB foo 1\r\nHPUB foo 0 2\r\nhi\r\nPING\r\n"),
			want: rpOpen("MSG foo 1 2\r\nhi\r\nPONG\r\n")},
		{name: "reply subject not checked", steps: rpOn0(`CONNECT {"verbose":false,"pedantic":true}` + "\r\nSUB foo 1\r\nPUB foo bar.* 1\r\nx\r\nPING\r\n"),
			want: rpOpen("MSG foo 1 bar.* 1\r\nx\r\nPONG\r\n")},
		{name: "queue names", anyOrder: true, steps: rpOn0(rpQuiet + "SUB foo a>b 1\r\nSUB foo q.* 2\r\nSUB foo q..x 3\r\nPUB foo 1\r\nx\r\nPING\r\n")},
		{name: "sid reused after UNSUB", steps: rpOn0(rpQuiet + "SUB foo 1\r\nUNSUB 1\r\nSUB bar 1\r\nPUB foo 1\r\nx\r\nPUB bar 1\r\ny\r\nPING\r\n"),
			want: rpOpen("MSG bar 1 1\r\ny\r\nPONG\r\n")},
		{name: "UNSUB max 0 ends now", steps: rpOn0(rpQuiet + "SUB foo 1\r\nUNSUB 1 0\r\nPUB foo 1\r\nx\r\nPING\r\n"), want: rpOpen("PONG\r\n")},
		{name: "one message matching several subscriptions", anyOrder: true,
			steps: rpOn0(rpQuiet + "SUB foo.bar 1\r\nSUB foo.* 2\r\nSUB > 3\r\nSUB foo.> 4\r\nSUB *.bar 5\r\nSUB foo.bar 6\r\nPUB foo.bar 1\r\nx\r\nPING\r\n")},
		{name: "echo false queue group of self only",
			steps: rpOn0(`CONNECT {"verbose":false,"echo":false,"headers":true,"no_responders":true}` + "\r\nSUB svc q 1\r\nSUB _INBOX.e 2\r\nPUB svc _INBOX.e 1\r\nx\r\nPING\r\n"),
			want:  rpOpen("HMSG _INBOX.e 2 35 35\r\nNATS/1.0 503\r\nNats-Subject: svc\r\n\r\n\r\nPONG\r\n")},
		{name: "auto-unsubscribe in a queue group",
			steps: rpOn0(rpQuiet + "SUB foo q 1\r\nUNSUB 1 1\r\nPUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nPING\r\n"),
			want:  rpOpen("MSG foo 1 1\r\na\r\nPONG\r\n")},
		{name: "wildcards in published subjects", anyOrder: true,
			steps: rpOn0(rpQuiet + "SUB > 1\r\nSUB * 2\r\nSUB foo.* 3\r\nSUB foo.> 4\r\nPUB > 1\r\na\r\nPUB * 1\r\nb\r\nPUB foo.> 1\r\nc\r\nPUB foo.* 1\r\nd\r\nPING\r\n")},
		{name: "empty tokens in published subjects", anyOrder: true,
			steps: rpOn0(rpQuiet + "SUB > 1\r\nSUB *.* 2\r\nPUB foo..bar 1\r\na\r\nPUB .foo 1\r\nb\r\nPUB foo. 1\r\nc\r\nPUB . 1\r\nd\r\nPING\r\n"),
			// A subject with an empty token matches nothing in nats-server.
			want: rpOpen("PONG\r\n")},
		{name: "UTF-8 subjects", steps: rpOn0(rpQuiet + "SUB f\u00f6\u00f6.* 1\r\nPUB f\u00f6\u00f6.b\u00e4r 2\r\nhi\r\nPING\r\n"),
			want: rpOpen("MSG f\u00f6\u00f6.b\u00e4r 1 2\r\nhi\r\nPONG\r\n")},
		{name: "pipelined messages", steps: rpOn0(rpQuiet + "SUB foo 1\r\n" + strings.Repeat("PUB foo 3\r\nabc\r\n", 2000) + "PING\r\n"),
			want: rpOpen(strings.Repeat("MSG foo 1 3\r\nabc\r\n", 2000) + "PONG\r\n")},
		{name: "large payload split across writes",
			steps: rpOn0(rpQuiet+"SUB foo 1\r\nPUB foo r 200000\r\n"+big[:70000], big[70000:]+"\r\nPING\r\n"),
			want:  rpOpen("MSG foo 1 r 200000\r\n" + big + "\r\nPONG\r\n")},
		{name: "protocol 1 async INFO after the first PONG",
			steps: rpOn0(`CONNECT {"verbose":false,"protocol":1}` + "\r\nPING\r\nPING\r\n")},
	}
}

// rpConnResult is what one connection saw.
type rpConnResult struct {
	info     string   // the first INFO, normalised
	steps    []string // what arrived in each step's window, INFO lines normalised
	closedAt int      // the step after which the server had closed it; -1: open
}

func (r rpConnResult) out() string { return strings.Join(r.steps, "") }

func (r rpConnResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "    %s\n", r.info)
	for i, s := range r.steps {
		fmt.Fprintf(&b, "    step %d: %s\n", i, rpShort(s))
	}
	if r.closedAt >= 0 {
		fmt.Fprintf(&b, "    closed after step %d\n", r.closedAt)
	} else {
		b.WriteString("    open\n")
	}
	return b.String()
}

func rpShort(s string) string {
	if len(s) > 400 {
		return fmt.Sprintf("%q...(%d bytes)", s[:400], len(s))
	}
	return fmt.Sprintf("%q", s)
}

type rpConn struct {
	c   net.Conn
	r   *bufio.Reader
	res rpConnResult
}

// rpRun plays a script against addr.
func rpRun(addr string, tc rpCase, window time.Duration) ([]rpConnResult, error) {
	n := 0
	for _, s := range tc.steps {
		n = max(n, s.conn+1)
	}
	conns := make([]*rpConn, n)
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		rc := &rpConn{c: c, r: bufio.NewReader(c), res: rpConnResult{closedAt: -1}}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		info, err := rc.r.ReadString('\n')
		if err != nil || !strings.HasPrefix(info, "INFO ") {
			return nil, fmt.Errorf("connection %d: no INFO (got %q): %v", i, info, err)
		}
		rc.res.info = rpNormInfo(info)
		conns[i] = rc
	}
	for si, st := range tc.steps {
		if rc := conns[st.conn]; rc.res.closedAt < 0 {
			rc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(rc.c, st.send); err != nil {
				rc.res.closedAt = si
			}
		}
		deadline := time.Now().Add(window)
		var wg sync.WaitGroup
		for _, rc := range conns {
			if rc.res.closedAt >= 0 && rc.res.closedAt < si {
				rc.res.steps = append(rc.res.steps, "")
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, eof := rc.readUntil(deadline)
				rc.res.steps = append(rc.res.steps, rpNormLines(out))
				if eof && rc.res.closedAt < 0 {
					rc.res.closedAt = si
				}
			}()
		}
		wg.Wait()
	}
	res := make([]rpConnResult, n)
	for i, rc := range conns {
		res[i] = rc.res
	}
	return res, nil
}

// readUntil returns what arrives before deadline and whether the server
// closed the connection (EOF or reset) by then.
func (rc *rpConn) readUntil(deadline time.Time) (string, bool) {
	var out []byte
	buf := make([]byte, 64<<10)
	rc.c.SetReadDeadline(deadline)
	for {
		n, err := rc.r.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return string(out), false
			}
			return string(out), true
		}
	}
}

// rpInfoIgnored are INFO keys that legitimately differ between the servers.
var rpInfoIgnored = []string{"xkey", "api_lvl", "switchyard_version", "connect_urls"}

// rpNormInfo reduces an INFO line to its set of keys and the values clients
// act on.
func rpNormInfo(line string) string {
	js := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(line, "INFO "), "\r\n"), " ")
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return "INFO(unparsable) " + line
	}
	var keys []string
	for k := range m {
		if !slices.Contains(rpInfoIgnored, k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return fmt.Sprintf("INFO keys=%s proto=%v headers=%v max_payload=%v ends-with-blank-CRLF=%v",
		strings.Join(keys, ","), m["proto"], m["headers"], m["max_payload"], strings.HasSuffix(line, "} \r\n"))
}

// rpNormLines normalises the INFO lines in a step's output and drops the
// server's keep-alive PINGs (scripts publish no payload holding such lines).
func rpNormLines(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		if strings.HasPrefix(s, "INFO {") {
			if i := strings.Index(s, "\r\n"); i >= 0 {
				b.WriteString(rpNormInfo(s[:i+2]) + "\n")
				s = s[i+2:]
				continue
			}
		}
		i := strings.Index(s, "\n")
		if i < 0 {
			b.WriteString(s)
			break
		}
		if s[:i+1] != "PING\r\n" {
			b.WriteString(s[:i+1])
		}
		s = s[i+1:]
	}
	return b.String()
}

// rpReferenceBin finds nats-server: $NATS_SERVER_BIN, /tmp/tools/bin, then
// the repository's .tools/bin.
func rpReferenceBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("NATS_SERVER_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("NATS_SERVER_BIN=%s: %v", p, err)
		}
		return p
	}
	root := testkit.RepoRoot(t)
	for _, p := range []string{"/tmp/tools/bin/nats-server", filepath.Join(root, ".tools", "bin", "nats-server")} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	t.Skipf("no reference nats-server: set NATS_SERVER_BIN, or install v2.15.2 at /tmp/tools/bin/nats-server or %s/.tools/bin/nats-server", root)
	return ""
}

func rpStartReference(t *testing.T, bin string) *testkit.Process {
	t.Helper()
	port := testkit.FreePort(t)
	p := testkit.Start(t, bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port))
	p.Port = port
	testkit.WaitForINFO(t, p, 10*time.Second)
	return p
}

func rpStartFrontdoor(t *testing.T) *testkit.Process {
	t.Helper()
	return testkit.StartFrontdoor(t, testkit.FrontdoorOptions{HTTPPort: -1})
}

// rpRunSet plays one case on every server of a set at once.
func rpRunSet(tc rpCase, set []*testkit.Process, window time.Duration) ([][]rpConnResult, error) {
	results := make([][]rpConnResult, len(set))
	errs := make([]error, len(set))
	var wg sync.WaitGroup
	for s, p := range set {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[s], errs[s] = rpRun(p.Addr(), tc, window)
			if errs[s] != nil {
				errs[s] = fmt.Errorf("%s: %w", p.Addr(), errs[s])
			}
		}()
	}
	wg.Wait()
	return results, errors.Join(errs...)
}

// rpRunAll plays every case on a server set: worker k plays cases k,
// k+len(sets), ... one after another on set k. It returns the results per
// case, then per server of the set.
func rpRunAll(cases []rpCase, sets [][]*testkit.Process, window time.Duration) ([][][]rpConnResult, []error) {
	results := make([][][]rpConnResult, len(cases))
	errs := make([]error, len(cases))
	var wg sync.WaitGroup
	for w, set := range sets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(cases); i += len(sets) {
				results[i], errs[i] = rpRunSet(cases[i], set, window)
			}
		}()
	}
	wg.Wait()
	return results, errs
}

// rpProblems lists what is wrong with one case's results: a server (named
// by names) that does not give the table's bytes, and with two servers,
// every connection on which they differ.
func rpProblems(tc rpCase, results [][]rpConnResult, names []string) []string {
	if tc.anyOrder {
		results = rpSorted(results)
	}
	var probs []string
	for s, res := range results {
		if tc.want == nil {
			break
		}
		for c, w := range tc.want {
			if c >= len(res) {
				probs = append(probs, fmt.Sprintf("%s: connection %d never opened", names[s], c))
				continue
			}
			want := w.out
			if tc.anyOrder {
				want = rpSorted([][]rpConnResult{{{steps: []string{want}}}})[0][0].steps[0]
			}
			if g := res[c]; g.out() != want || (g.closedAt >= 0) != w.closed {
				probs = append(probs, fmt.Sprintf("%s: connection %d:\n got  %s (closed: %v)\n want %s (closed: %v)\nscript: %s\n%s",
					names[s], c, rpShort(g.out()), g.closedAt >= 0, rpShort(w.out), w.closed, rpScript(tc), g))
			}
		}
	}
	if len(results) == 2 {
		ref, ours := results[0], results[1]
		for c := range ref {
			if c >= len(ours) || ref[c].String() != ours[c].String() {
				var o rpConnResult
				if c < len(ours) {
					o = ours[c]
				}
				probs = append(probs, fmt.Sprintf("connection %d differs\nscript: %s\n%s:\n%s%s:\n%s",
					c, rpScript(tc), names[0], ref[c], names[1], o))
			}
		}
	}
	return probs
}

// rpSlowWindow is the read window of the second try of a failed case: a
// loaded machine (CI runs test binaries side by side) can miss 300 ms.
const rpSlowWindow = time.Second

// rpPlay plays every case on the server sets and reports each case's
// problems in a subtest. Failed cases are played once more, together, with
// a long window, to tell a slow machine from a real difference.
func rpPlay(t *testing.T, cases []rpCase, sets [][]*testkit.Process, names []string) {
	results, errs := rpRunAll(cases, sets, rpWindow)
	probs := make([][]string, len(cases))
	var retry []int
	for i, tc := range cases {
		if errs[i] == nil {
			probs[i] = rpProblems(tc, results[i], names)
		}
		if errs[i] != nil || len(probs[i]) > 0 {
			retry = append(retry, i)
		}
	}
	if len(retry) > 0 {
		again := make([]rpCase, len(retry))
		for k, i := range retry {
			again[k] = cases[i]
			t.Logf("playing %q again with a %v window: %v %q", cases[i].name, rpSlowWindow, errs[i], probs[i])
		}
		results, errs := rpRunAll(again, sets, rpSlowWindow)
		for k, i := range retry {
			if errs[k] != nil {
				probs[i] = []string{errs[k].Error()}
			} else {
				probs[i] = rpProblems(cases[i], results[k], names)
			}
		}
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range probs[i] {
				t.Error(p)
			}
		})
	}
}

// TestRawProtoDifferential: the same bytes to nats-server and to a frontdoor
// must get the same answers and the same closes, and the table's bytes
// where it has them.
func TestRawProtoDifferential(t *testing.T) {
	bin := rpReferenceBin(t)
	sets := make([][]*testkit.Process, rpWorkers)
	for i := range sets {
		sets[i] = []*testkit.Process{rpStartReference(t, bin), rpStartFrontdoor(t)}
	}
	// When only the reference misses the table's bytes, the table is wrong.
	rpPlay(t, rpCases(), sets, []string{"nats-server", "frontdoor"})
}

// TestRawProtoExact: the frontdoor alone against the table's exact bytes,
// for CI without the reference.
func TestRawProtoExact(t *testing.T) {
	var cases []rpCase
	for _, tc := range rpCases() {
		if tc.want != nil {
			cases = append(cases, tc)
		}
	}
	sets := make([][]*testkit.Process, rpWorkers)
	for i := range sets {
		sets[i] = []*testkit.Process{rpStartFrontdoor(t)}
	}
	rpPlay(t, cases, sets, []string{"frontdoor"})
}

// TestRawProtoQueueGroup: messages to a queue group with members on two
// connections each reach exactly one member.
func TestRawProtoQueueGroup(t *testing.T) {
	p := rpStartFrontdoor(t)
	tc := rpCase{steps: []rpStep{
		{0, rpQuiet + "SUB q.z grp 1\r\nPING\r\n"},
		{1, rpQuiet + "SUB q.z grp 2\r\nPING\r\n"},
		{2, rpQuiet + "PUB q.z 1\r\nm\r\nPUB q.z 1\r\nn\r\nPUB q.z 1\r\no\r\nPING\r\n"},
	}}
	res, err := rpRun(p.Addr(), tc, rpWindow)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Count(res[0].out(), "MSG q.z 1 1\r\n") + strings.Count(res[1].out(), "MSG q.z 2 1\r\n")
	if got != 3 || res[2].out() != "PONG\r\n" {
		t.Fatalf("3 messages to a queue group of 2: %d delivered\n%s%s%s", got, res[0], res[1], res[2])
	}
}

func rpScript(tc rpCase) string {
	var b strings.Builder
	for i, s := range tc.steps {
		fmt.Fprintf(&b, "\n  step %d on connection %d: %s", i, s.conn, rpShort(s.send))
	}
	return b.String()
}

// rpSorted returns a copy of results with each step's protocol messages (a
// line, with its payload for MSG and HMSG) in sorted order.
func rpSorted(results [][]rpConnResult) [][]rpConnResult {
	out := make([][]rpConnResult, len(results))
	for s, res := range results {
		out[s] = make([]rpConnResult, len(res))
		for c, r := range res {
			r.steps = slices.Clone(r.steps)
			for i, st := range r.steps {
				r.steps[i] = rpSortUnits(st)
			}
			out[s][c] = r
		}
	}
	return out
}

func rpSortUnits(s string) string {
	var units []string
	for len(s) > 0 {
		end := strings.Index(s, "\n") + 1
		if end == 0 {
			end = len(s)
		}
		if f := strings.Fields(s[:end]); len(f) > 0 && (f[0] == "MSG" || f[0] == "HMSG") {
			if n, err := strconv.Atoi(f[len(f)-1]); err == nil {
				end = min(len(s), end+n+2)
			}
		}
		units = append(units, s[:end])
		s = s[end:]
	}
	sort.Strings(units)
	return strings.Join(units, "")
}
