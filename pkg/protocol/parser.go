// Package protocol parses the NATS client protocol as a server reads it.
//
// The parser is a line scanner over the caller's read buffer: when a whole
// operation (control line and payload) sits in the buffer it is handed to the
// Handler without copying; only operations split across reads are copied into
// the parser's own scratch space, which is reused. Steady state allocates
// nothing.
package protocol

import (
	"bytes"
	"errors"
)

// Handler receives parsed operations. Slices passed to it are valid only for
// the duration of the call.
type Handler interface {
	// Connect receives the JSON argument of CONNECT.
	Connect(arg []byte) error
	// Pub receives PUB (headerLen < 0) and HPUB. msg holds the header block
	// (msg[:headerLen]) followed by the payload.
	Pub(subject, reply []byte, headerLen int, msg []byte) error
	Sub(subject, queue, sid []byte) error
	// Unsub receives UNSUB; max is 0 when absent.
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
	ErrUnknownOp = errors.New("Unknown Protocol Operation")
	// ErrControlLineTooLong: -ERR, then closed.
	ErrControlLineTooLong = errors.New("maximum control line exceeded")
	// ErrMaxPayload: -ERR 'Maximum Payload Violation', then closed.
	ErrMaxPayload = errors.New("Maximum Payload Violation")
	// ErrBadArgs: wrong argument count or a bad number; nats-server closes
	// these connections without an -ERR.
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

	line []byte // a control line split across reads

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
			p.line = append(p.line, line...)
			line = p.line
		}
		buf = buf[i+1:]
		n, err := p.controlLine(line, buf)
		p.line = p.line[:0]
		if err != nil {
			return err
		}
		buf = buf[n:]
	}
	return nil
}

// holdPartialLine keeps an incomplete control line for the next read,
// refusing it early when it can no longer be valid.
func (p *Parser) holdPartialLine(buf []byte) error {
	p.line = append(p.line, buf...)
	if !knownOpPrefix(p.line) {
		p.line = p.line[:0]
		return ErrUnknownOp
	}
	_, args := splitOp(p.line)
	if len(args) > p.MaxControlLine {
		p.line = p.line[:0]
		return ErrControlLineTooLong
	}
	return nil
}

// controlLine handles one line (without '\n'); rest is what follows it in the
// read buffer. It returns how much of rest it consumed as payload.
func (p *Parser) controlLine(line, rest []byte) (int, error) {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	name, args := splitOp(line)
	if len(args) > p.MaxControlLine {
		return 0, ErrControlLineTooLong
	}
	if len(name) == len(line) && len(name) != 4 {
		// Only PING, PONG, +OK and -ERR stand alone; nats-server wants a
		// blank after every other operation name.
		if !(len(name) == 3 && name[0] == '+' && upper2(name[1:], 'O', 'K')) &&
			!(len(name) > 4 && (upper4(name, 'P', 'I', 'N', 'G') || upper4(name, 'P', 'O', 'N', 'G'))) {
			return 0, ErrUnknownOp
		}
	}
	switch len(name) {
	case 3:
		if upper3(name, 'P', 'U', 'B') {
			return p.pub(args, rest, false)
		}
		if upper3(name, 'S', 'U', 'B') {
			return 0, p.sub(args)
		}
		if name[0] == '+' && upper2(name[1:], 'O', 'K') {
			return 0, nil
		}
	case 4:
		if upper4(name, 'H', 'P', 'U', 'B') {
			if !p.Headers {
				return 0, ErrHeadersNotEnabled
			}
			return p.pub(args, rest, true)
		}
		if upper4(name, 'P', 'I', 'N', 'G') {
			return 0, p.h.Ping()
		}
		if upper4(name, 'P', 'O', 'N', 'G') {
			return 0, p.h.Pong()
		}
		if name[0] == '-' && upper3(name[1:], 'E', 'R', 'R') {
			return 0, p.h.Err(args)
		}
		if upper4(name, 'I', 'N', 'F', 'O') {
			return 0, nil // clients have nothing to tell a server in INFO
		}
	case 5:
		if upper4(name, 'U', 'N', 'S', 'U') && upper(name[4]) == 'B' {
			return 0, p.unsub(args)
		}
	case 7:
		if upper4(name, 'C', 'O', 'N', 'N') && upper3(name[4:], 'E', 'C', 'T') {
			return 0, p.h.Connect(args)
		}
	}
	// nats-server ignores what follows PING / PONG on the same line.
	if len(name) > 4 && (upper4(name, 'P', 'I', 'N', 'G') || upper4(name, 'P', 'O', 'N', 'G')) {
		if upper(name[1]) == 'I' {
			return 0, p.h.Ping()
		}
		return 0, p.h.Pong()
	}
	return 0, ErrUnknownOp
}

func (p *Parser) pub(args, rest []byte, headers bool) (int, error) {
	var a [4][]byte
	n := splitArgs(args, a[:])
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
	switch splitArgs(args, a[:]) {
	case 2:
		return p.h.Sub(a[0], nil, a[1])
	case 3:
		return p.h.Sub(a[0], a[1], a[2])
	}
	return ErrBadArgs
}

func (p *Parser) unsub(args []byte) error {
	var a [2][]byte
	switch splitArgs(args, a[:]) {
	case 1:
		return p.h.Unsub(a[0], 0)
	case 2:
		max := parseSize(a[1])
		if max < 0 {
			return ErrBadArgs
		}
		return p.h.Unsub(a[0], int64(max))
	}
	return ErrBadArgs
}

// splitOp separates the operation name from its arguments.
func splitOp(line []byte) (name, args []byte) {
	for i, b := range line {
		if b == ' ' || b == '\t' {
			args = line[i+1:]
			for len(args) > 0 && (args[0] == ' ' || args[0] == '\t') {
				args = args[1:]
			}
			return line[:i], args
		}
	}
	return line, nil
}

// splitArgs splits on runs of blanks into out and returns how many fields
// there were; more fields than out holds return len(out)+1.
func splitArgs(args []byte, out [][]byte) int {
	n := 0
	start := -1
	for i := 0; i <= len(args); i++ {
		blank := i == len(args) || args[i] == ' ' || args[i] == '\t' || args[i] == '\r' || args[i] == '\n'
		if blank {
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

// parseSize parses a non-negative decimal; -1 on anything else or overflow.
func parseSize(b []byte) int {
	if len(b) == 0 || len(b) > 10 {
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

func upper2(b []byte, c0, c1 byte) bool { return upper(b[0]) == c0 && upper(b[1]) == c1 }
func upper3(b []byte, c0, c1, c2 byte) bool {
	return upper(b[0]) == c0 && upper(b[1]) == c1 && upper(b[2]) == c2
}
func upper4(b []byte, c0, c1, c2, c3 byte) bool {
	return upper(b[0]) == c0 && upper(b[1]) == c1 && upper(b[2]) == c2 && upper(b[3]) == c3
}

var opNames = []string{"PUB", "HPUB", "SUB", "UNSUB", "PING", "PONG", "CONNECT", "INFO", "+OK", "-ERR"}

// knownOpPrefix reports whether an incomplete line can still become a valid
// operation, so garbage is refused without waiting for a newline.
func knownOpPrefix(line []byte) bool {
	name, _ := splitOp(line)
	complete := len(name) < len(line)
	if n := len(name); n > 0 && name[n-1] == '\r' && !complete {
		name, complete = name[:n-1], true
	}
	for _, op := range opNames {
		if len(name) > len(op) {
			if (op == "PING" || op == "PONG") && prefixFold(name, op) {
				return true
			}
			continue
		}
		if complete && len(name) != len(op) {
			continue
		}
		if prefixFold([]byte(op), string(name)) {
			return true
		}
	}
	return false
}

// prefixFold reports whether s starts with prefix, ignoring ASCII case.
func prefixFold(s []byte, prefix string) bool {
	if len(prefix) > len(s) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if upper(s[i]) != upper(prefix[i]) {
			return false
		}
	}
	return true
}
