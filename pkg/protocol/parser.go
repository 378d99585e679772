// Package protocol parses the NATS client protocol as a server reads it.
//
// The parser is a line scanner over the caller's read buffer: when a whole
// operation (control line and payload) sits in the buffer it is handed to the
// Handler without copying; only operations split across reads are copied into
// the parser's own scratch space, which is reused. Steady state allocates
// nothing.
//
// What it accepts and refuses, and when, follows nats-server's byte-at-a-time
// parser (server/parser.go): case-insensitive names, blanks as spaces or tabs,
// bare '\n' line ends, text after PING/PONG/+OK ignored, CONNECT and INFO
// without a blank. The outcome never depends on how the stream is cut into
// reads (FuzzParser checks it). One deliberate difference: nats-server takes
// a '\n' right after "PUB " (or "CONNECT") as the first byte of the
// arguments; here it ends the line.
package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Handler receives parsed operations. Slices passed to it are valid only for
// the duration of the call.
type Handler interface {
	// Connect receives the JSON argument of CONNECT.
	Connect(arg []byte) error
	// Pub receives PUB (headerLen < 0) and HPUB. msg holds the header block
	// (msg[:headerLen]) followed by the payload. An HPUB with an empty
	// header block arrives as a PUB.
	Pub(subject, reply []byte, headerLen int, msg []byte) error
	Sub(subject, queue, sid []byte) error
	// Unsub receives UNSUB; max is 0 when absent or not a number (which
	// nats-server takes as "unsubscribe now").
	Unsub(sid []byte, max int64) error
	Ping() error
	Pong() error
	// Err receives a -ERR sent by the peer.
	Err(arg []byte) error
}

// Errors the server reports. The text of ErrUnknownOp and
// ErrControlLineTooLong is what nats-server sends in -ERR.
var (
	// ErrUnknownOp: an unknown operation, an empty line or a payload whose
	// terminator is not where its length says. Sent as -ERR, then closed.
	//lint:ignore ST1005 the text is nats-server's wire error
	ErrUnknownOp = errors.New("Unknown Protocol Operation")
	// ErrControlLineTooLong: -ERR, then closed.
	ErrControlLineTooLong = errors.New("maximum control line exceeded")
	// ErrMaxPayload: -ERR 'Maximum Payload Violation', then closed.
	//lint:ignore ST1005 the text is nats-server's wire error
	ErrMaxPayload = errors.New("Maximum Payload Violation")
	// ErrBadArgs: wrong argument count, a bad number or an INFO that is not
	// JSON; nats-server closes these connections without an -ERR.
	ErrBadArgs = errors.New("protocol argument error")
	// ErrHeadersNotEnabled: HPUB from a client that did not ask for
	// headers; closed without -ERR.
	ErrHeadersNotEnabled = errors.New("headers not enabled")
)

type op uint8

const (
	opNone op = iota
	opPub
	opHPub
	opSub
	opUnsub
	opPing
	opPong
	opConnect
	opInfo
	opOK
	opErr
)

// Parser holds the state between reads. Configure the limits before the
// first Parse; they may be changed between calls.
type Parser struct {
	// MaxControlLine bounds the arguments of one control line (after the
	// operation name), as nats-server counts them.
	MaxControlLine int
	// MaxPayload bounds a PUB/HPUB total size.
	MaxPayload int
	// Headers allows HPUB.
	Headers bool

	h Handler

	// A control line split across reads. For PING, PONG and +OK it holds
	// only the operation name and skipRest drops the bytes up to the
	// newline, so no line can grow without bound.
	line     []byte
	skipRest bool

	// A PUB/HPUB whose payload is split across reads.
	pending   op
	size      int
	headerLen int
	subject   []byte
	reply     []byte
	hasReply  bool
	msg       []byte
}

// New returns a parser delivering to h.
func New(h Handler) *Parser {
	return &Parser{h: h, MaxControlLine: 4096, MaxPayload: 1 << 20}
}

// Parse consumes buf. It returns the first error, after which the connection
// must be closed.
func (p *Parser) Parse(buf []byte) error {
	for len(buf) > 0 {
		if p.pending != opNone {
			n, err := p.fillPayload(buf)
			if err != nil {
				return err
			}
			buf = buf[n:]
			continue
		}
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			return p.holdPartialLine(buf)
		}
		line := buf[:i]
		if len(p.line) > 0 {
			if !p.skipRest {
				p.line = append(p.line, line...)
			}
			line = p.line
		}
		buf = buf[i+1:]
		n, err := p.controlLine(line, buf)
		p.resetLine()
		if err != nil {
			return err
		}
		buf = buf[n:]
	}
	return nil
}

// maxHeldLine is the largest line buffer kept between lines; a longer one
// (only a burst of blanks can make it) is dropped rather than pinned.
const maxHeldLine = 16 << 10

func (p *Parser) resetLine() {
	p.line, p.skipRest = p.line[:0], false
	if cap(p.line) > maxHeldLine {
		p.line = nil
	}
}

// holdPartialLine keeps an incomplete control line for the next read,
// refusing it as early as nats-server would: an operation name that cannot
// be completed, or arguments already over the limit.
func (p *Parser) holdPartialLine(buf []byte) error {
	if p.skipRest {
		return nil
	}
	p.line = append(p.line, buf...)
	s, argStart, st := classify(p.line, false)
	switch st {
	case unknownOp:
		p.resetLine()
		return ErrUnknownOp
	case needMore:
		return nil // at most len("CONNECT") bytes
	}
	nameEnd := len(s.name)
	if s.rule == restIgnored {
		p.line, p.skipRest = p.line[:nameEnd], true
		return nil
	}
	args := p.line[argStart:]
	if n := len(args); n > 0 && args[n-1] == '\r' {
		args = args[:n-1] // may be the end of the line; not counted
	}
	if len(args) > p.MaxControlLine {
		p.resetLine()
		return ErrControlLineTooLong
	}
	if argStart > nameEnd+1 {
		// Keep one blank of a run, so a stream of blanks cannot grow
		// the line: nats-server accepts any number of them.
		p.line = append(p.line[:nameEnd+1], p.line[argStart:]...)
	}
	return nil
}

// controlLine handles one line (without '\n'); rest is what follows it in the
// read buffer. It returns how much of rest it consumed as payload.
func (p *Parser) controlLine(line, rest []byte) (int, error) {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	s, argStart, st := classify(line, true)
	if st != matched {
		return 0, ErrUnknownOp
	}
	args := line[argStart:]
	if s.rule != restIgnored && len(args) > p.MaxControlLine {
		return 0, ErrControlLineTooLong
	}
	switch s.kind {
	case opPub:
		return p.pub(args, rest, false)
	case opHPub:
		if !p.Headers {
			return 0, ErrHeadersNotEnabled
		}
		return p.pub(args, rest, true)
	case opSub:
		return 0, p.sub(args)
	case opUnsub:
		return 0, p.unsub(args)
	case opPing:
		return 0, p.h.Ping()
	case opPong:
		return 0, p.h.Pong()
	case opConnect:
		return 0, p.h.Connect(args)
	case opInfo:
		// Clients have nothing to tell a server in INFO, but nats-server
		// decodes it and closes the connection when that fails.
		if !validInfo(args) {
			return 0, ErrBadArgs
		}
		return 0, nil
	case opErr:
		return 0, p.h.Err(args)
	}
	return 0, nil // +OK
}

func (p *Parser) pub(args, rest []byte, headers bool) (int, error) {
	var a [4][]byte
	// nats-server splits PUB arguments on spaces and tabs only: a stray
	// '\r' stays inside a field (and makes a size invalid).
	n := splitArgs(args, a[:], false)
	var subject, reply, hdr, size []byte
	hasReply := false
	switch {
	case !headers && n == 2:
		subject, size = a[0], a[1]
	case !headers && n == 3:
		subject, reply, size, hasReply = a[0], a[1], a[2], true
	case headers && n == 3:
		subject, hdr, size = a[0], a[1], a[2]
	case headers && n == 4:
		subject, reply, hdr, size, hasReply = a[0], a[1], a[2], a[3], true
	default:
		return 0, ErrBadArgs
	}
	total := parseSize(size)
	if total < 0 {
		return 0, ErrBadArgs
	}
	headerLen := -1
	if headers {
		headerLen = parseSize(hdr)
		if headerLen < 0 || headerLen > total {
			return 0, ErrBadArgs
		}
		if headerLen == 0 {
			// nats-server treats an empty header block as none and
			// delivers MSG, not HMSG.
			headerLen = -1
		}
	}
	if total > p.MaxPayload {
		return 0, ErrMaxPayload
	}
	if len(rest) >= total+2 {
		if rest[total] != '\r' || rest[total+1] != '\n' {
			return 0, ErrUnknownOp
		}
		if !hasReply {
			reply = nil
		}
		return total + 2, p.h.Pub(subject, reply, headerLen, rest[:total])
	}
	if len(rest) == total+1 && rest[total] != '\r' {
		return 0, ErrUnknownOp // refused before the rest arrives, as nats-server does
	}
	// Split payload: keep copies of the arguments until it is complete.
	p.pending = opPub
	p.size, p.headerLen, p.hasReply = total, headerLen, hasReply
	p.subject = append(p.subject[:0], subject...)
	p.reply = append(p.reply[:0], reply...)
	if cap(p.msg) < total+2 {
		p.msg = make([]byte, 0, total+2)
	}
	p.msg = append(p.msg[:0], rest...)
	return len(rest), nil
}

func (p *Parser) fillPayload(buf []byte) (int, error) {
	need := p.size + 2 - len(p.msg)
	if len(buf) < need {
		p.msg = append(p.msg, buf...)
		if len(p.msg) > p.size && p.msg[p.size] != '\r' {
			p.pending = opNone
			return 0, ErrUnknownOp
		}
		return len(buf), nil
	}
	p.msg = append(p.msg, buf[:need]...)
	p.pending = opNone
	if p.msg[p.size] != '\r' || p.msg[p.size+1] != '\n' {
		return 0, ErrUnknownOp
	}
	var reply []byte
	if p.hasReply {
		reply = p.reply
	}
	err := p.h.Pub(p.subject, reply, p.headerLen, p.msg[:p.size])
	if cap(p.msg) > 64<<10 {
		p.msg = nil // do not pin a large message's buffer to an idle connection
	}
	return need, err
}

func (p *Parser) sub(args []byte) error {
	var a [3][]byte
	switch splitArgs(args, a[:], true) {
	case 2:
		return p.h.Sub(a[0], nil, a[1])
	case 3:
		return p.h.Sub(a[0], a[1], a[2])
	}
	return ErrBadArgs
}

func (p *Parser) unsub(args []byte) error {
	var a [2][]byte
	switch splitArgs(args, a[:], true) {
	case 1:
		return p.h.Unsub(a[0], 0)
	case 2:
		// nats-server reads a bad max as "no max": the subscription
		// ends now and the connection stays open.
		max := parseSize(a[1])
		if max < 0 {
			max = 0
		}
		return p.h.Unsub(a[0], int64(max))
	}
	return ErrBadArgs
}

// validInfo reports whether nats-server would decode an INFO argument: a
// JSON object or null. (It would also refuse a known field of the wrong
// type; that is not checked.)
func validInfo(arg []byte) bool {
	for len(arg) > 0 && (arg[0] == ' ' || arg[0] == '\t' || arg[0] == '\r' || arg[0] == '\n') {
		arg = arg[1:]
	}
	return len(arg) > 0 && (arg[0] == '{' || arg[0] == 'n') && json.Valid(arg)
}

// splitArgs splits on runs of blanks (with crlf, also on '\r' and '\n')
// into out and returns how many fields there were; more fields than out
// holds return len(out)+1.
func splitArgs(args []byte, out [][]byte, crlf bool) int {
	class := &argBlank
	if crlf {
		class = &argBlankCRLF
	}
	n := 0
	start := -1
	for i := 0; i <= len(args); i++ {
		if i == len(args) || class[args[i]] {
			if start >= 0 {
				if n == len(out) {
					return n + 1
				}
				out[n] = args[start:i]
				n++
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	return n
}

// Byte classes for splitArgs: one table load per byte on the hot path
// instead of a chain of comparisons.
var argBlank, argBlankCRLF [256]bool

func init() {
	for _, b := range []byte{' ', '\t'} {
		argBlank[b], argBlankCRLF[b] = true, true
	}
	argBlankCRLF['\r'], argBlankCRLF['\n'] = true, true
}

// parseSize parses a non-negative decimal of at most 9 digits, as
// nats-server does; -1 on anything else.
func parseSize(b []byte) int {
	if len(b) == 0 || len(b) > 9 {
		return -1
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func upper(b byte) byte {
	if b >= 'a' && b <= 'z' {
		return b - ('a' - 'A')
	}
	return b
}

func isBlank(b byte) bool { return b == ' ' || b == '\t' }

// How an operation's name is followed, as nats-server's state machine has it.
type argRule uint8

const (
	argsAfterBlank argRule = iota // PUB foo 5: at least one blank, then the arguments
	argsAfterName                 // CONNECT{...}: blanks optional
	restIgnored                   // PING, PONG, +OK: anything up to the newline is ignored
)

type opSpec struct {
	name string // upper case
	kind op
	rule argRule
}

var (
	specPub     = opSpec{"PUB", opPub, argsAfterBlank}
	specHPub    = opSpec{"HPUB", opHPub, argsAfterBlank}
	specSub     = opSpec{"SUB", opSub, argsAfterBlank}
	specUnsub   = opSpec{"UNSUB", opUnsub, argsAfterBlank}
	specPing    = opSpec{"PING", opPing, restIgnored}
	specPong    = opSpec{"PONG", opPong, restIgnored}
	specConnect = opSpec{"CONNECT", opConnect, argsAfterName}
	specInfo    = opSpec{"INFO", opInfo, argsAfterName}
	specOK      = opSpec{"+OK", opOK, restIgnored}
	specErr     = opSpec{"-ERR", opErr, argsAfterBlank}
)

type matchState uint8

const (
	matched  matchState = iota
	needMore            // a prefix of a valid line (only when incomplete)
	unknownOp
)

// classify finds the operation a line starts with, ignoring ASCII case, and
// where its arguments start (after the blanks). complete says the line has
// ended; otherwise a line that may still become valid is needMore.
func classify(line []byte, complete bool) (*opSpec, int, matchState) {
	if len(line) == 0 {
		if complete {
			return nil, 0, unknownOp
		}
		return nil, 0, needMore
	}
	// The hot path first: "PUB " in upper case.
	if len(line) > 4 && line[0] == 'P' && line[1] == 'U' && line[2] == 'B' && isBlank(line[3]) {
		i := 4
		for i < len(line) && isBlank(line[i]) {
			i++
		}
		return &specPub, i, matched
	}
	var s *opSpec
	switch upper(line[0]) {
	case 'P':
		if len(line) == 1 {
			if complete {
				return nil, 0, unknownOp
			}
			return nil, 0, needMore
		}
		switch upper(line[1]) {
		case 'U':
			s = &specPub
		case 'I':
			s = &specPing
		case 'O':
			s = &specPong
		default:
			return nil, 0, unknownOp
		}
	case 'H':
		s = &specHPub
	case 'S':
		s = &specSub
	case 'U':
		s = &specUnsub
	case 'C':
		s = &specConnect
	case 'I':
		s = &specInfo
	case '+':
		s = &specOK
	case '-':
		s = &specErr
	default:
		return nil, 0, unknownOp
	}
	n := len(s.name)
	for i := 0; i < n && i < len(line); i++ {
		if upper(line[i]) != s.name[i] {
			return nil, 0, unknownOp
		}
	}
	if len(line) < n || (s.rule == argsAfterBlank && len(line) == n) {
		if complete {
			return nil, 0, unknownOp
		}
		return nil, 0, needMore
	}
	i := n
	switch s.rule {
	case restIgnored:
		return s, len(line), matched
	case argsAfterBlank:
		if !isBlank(line[n]) {
			return nil, 0, unknownOp
		}
	}
	for i < len(line) && isBlank(line[i]) {
		i++
	}
	return s, i, matched
}
