// Package mesh is the wire format of the direct node-to-node data path.
//
// Every node (frontdoor now; streamsvc and linkd later) listens on a mesh
// port and opens one TCP connection to each other node it has messages
// for. The router tier tells each node who wants what (interest, over
// gRPC) and where the others listen; messages themselves go straight from
// the publisher's node to the subscriber's, one hop, as between the
// servers of a nats-server cluster. See docs/architecture.md for why.
//
// A connection is one-way. The dialing node sends a hello line
//
//	SYMESH v1 <from-node-id> <to-node-id>\r\n
//
// and waits for "+OK\r\n" (or "-ERR '<why>'\r\n", after which the listener
// closes). Then it sends message frames only, and the listener never writes
// again. A frame is binary, little-endian:
//
//	u32 length of what follows
//	u8  kind (KindMessage)
//	u8  flags (FlagPlain, FlagHeader; or FlagInterest alone: an interest hint)
//	u8  number of queue groups
//	u16 account length, u16 subject length, u16 reply length
//	u32 header length (0 without FlagHeader)
//	per queue group: u16 length, then the name
//	account, subject, reply, header, payload
//
// Binary lengths rather than text keep encoding and decoding to a few
// copies and no number formatting; the frame is about as long as the
// nats-server route protocol's RMSG line for the same message.
package mesh

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Version is the mesh protocol version this code speaks.
const Version = "v1"

// KindMessage is the only frame kind in v1.
const KindMessage = 1

// Frame flags.
const (
	// FlagPlain: deliver to the receiving node's plain subscriptions.
	FlagPlain = 1 << 0
	// FlagHeader: the body starts with a NATS/1.0 header block.
	FlagHeader = 1 << 1
	// FlagInterest: not a message but an interest hint: the sender now
	// subscribes to Subject (a pattern) in Account, in the queue group
	// named by the one queue entry if any. Sent before the messages that
	// may cause a reply to it (a JetStream API response, say), it orders
	// the interest before them on this connection, as a nats-server route
	// orders RS+ before RMSG; the router tier carries the same interest a
	// moment later. Body and reply are empty.
	FlagInterest = 1 << 2
	// FlagGone, with FlagInterest: the sender no longer subscribes (a hint
	// withdrawn, so a request is not sent on to it meanwhile).
	FlagGone = 1 << 3
	// FlagTo: the message is addressed to another subject than the one its
	// receivers see: the body starts with a u16 length and that subject,
	// which the receiving node matches subscriptions against, while MSG
	// shows Subject. A JetStream delivery goes to a consumer's inbox or
	// deliver subject but shows the subject the message was stored under.
	FlagTo = 1 << 4
)

const (
	lenPrefix = 4
	fixedLen  = 1 + 1 + 1 + 2 + 2 + 2 + 4 // after the length prefix
	maxShort  = 1<<16 - 1
	maxQueues = 1<<8 - 1
)

// MaxOverhead is the most a frame adds to its body besides subject, reply,
// account and queue names.
const MaxOverhead = lenPrefix + fixedLen

// Errors a decoder reports; the connection is then closed.
var (
	ErrFrameTooLarge = errors.New("mesh: frame larger than the limit")
	ErrMalformed     = errors.New("mesh: malformed frame")
)

// Message is one decoded frame. Its slices point into the buffer it was
// decoded from and are valid until that buffer is reused.
type Message struct {
	Account, Subject, Reply []byte
	To                      []byte   // FlagTo: the subject to match (nil: Subject)
	Queues                  [][]byte // groups the receiver must serve one member of
	Plain                   bool
	Interest                bool   // an interest hint (FlagInterest), not a message
	Gone                    bool   // with Interest: the subscription ended (FlagGone)
	HeaderLen               int    // -1: no header
	Body                    []byte // header block (HeaderLen bytes) then payload
}

// EncodedLen is the size of the frame AppendMessage writes.
func EncodedLen(account, subject, reply []byte, queues []string, body []byte) int {
	return EncodedLenTo(account, subject, nil, reply, queues, body)
}

// EncodedLenTo is the size of the frame AppendMessageTo writes.
func EncodedLenTo(account, subject, to, reply []byte, queues []string, body []byte) int {
	n := lenPrefix + fixedLen + len(account) + len(subject) + len(reply) + len(body)
	if to != nil {
		n += 2 + len(to)
	}
	for _, q := range queues {
		n += 2 + len(q)
	}
	return n
}

// Fits reports whether a message can be framed: subject, reply, account and
// queue names are limited to 64 KiB and there are at most 255 queue groups.
func Fits(account, subject, reply []byte, queues []string) bool {
	if len(account) > maxShort || len(subject) > maxShort || len(reply) > maxShort || len(queues) > maxQueues {
		return false
	}
	for _, q := range queues {
		if len(q) > maxShort {
			return false
		}
	}
	return true
}

// AppendMessage appends one frame to b. headerLen < 0 means body has no
// header block. The caller checks Fits first.
func AppendMessage(b, account, subject, reply []byte, queues []string, plain bool, headerLen int, body []byte) []byte {
	return AppendMessageTo(b, account, subject, nil, reply, queues, plain, headerLen, body)
}

// AppendMessageTo is AppendMessage for a message addressed to subject to
// but shown as subject (FlagTo; to nil: an ordinary message). The caller
// checks Fits for both subjects first.
func AppendMessageTo(b, account, subject, to, reply []byte, queues []string, plain bool, headerLen int, body []byte) []byte {
	var flags byte
	if to != nil {
		flags |= FlagTo
	}
	if plain {
		flags |= FlagPlain
	}
	hl := 0
	if headerLen >= 0 {
		flags |= FlagHeader
		hl = headerLen
	}
	size := EncodedLenTo(account, subject, to, reply, queues, body) - lenPrefix
	b = binary.LittleEndian.AppendUint32(b, uint32(size))
	b = append(b, KindMessage, flags, byte(len(queues)))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(account)))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(subject)))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(reply)))
	b = binary.LittleEndian.AppendUint32(b, uint32(hl))
	for _, q := range queues {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(q)))
		b = append(b, q...)
	}
	b = append(b, account...)
	b = append(b, subject...)
	b = append(b, reply...)
	if to != nil {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(to)))
		b = append(b, to...)
	}
	return append(b, body...)
}

// AppendInterest appends an interest hint frame (FlagInterest) for
// pattern in account, in queue group queue ("" for none); gone withdraws
// it (FlagGone). The caller checks Fits first.
func AppendInterest(b, account, pattern []byte, queue string, gone bool) []byte {
	var queues []string
	if queue != "" {
		queues = []string{queue}
	}
	at := len(b)
	b = AppendMessage(b, account, pattern, nil, queues, false, -1, nil)
	b[at+lenPrefix+1] = FlagInterest
	if gone {
		b[at+lenPrefix+1] |= FlagGone
	}
	return b
}

// FrameSize is the full size of the frame at the start of buf, or 0 when
// fewer than 4 bytes are there to tell.
func FrameSize(buf []byte) int {
	if len(buf) < lenPrefix {
		return 0
	}
	return lenPrefix + int(binary.LittleEndian.Uint32(buf))
}

// Decode reads the frame at the start of buf into m, reusing m.Queues. It
// returns the bytes consumed, or 0 and no error when buf holds only part of
// a frame. A frame over maxFrame bytes, or one whose lengths do not add up,
// is an error.
func Decode(buf []byte, m *Message, maxFrame int) (int, error) {
	if len(buf) < lenPrefix {
		return 0, nil
	}
	size := binary.LittleEndian.Uint32(buf)
	if uint64(size) > uint64(maxFrame) {
		return 0, ErrFrameTooLarge
	}
	total := lenPrefix + int(size)
	if len(buf) < total {
		return 0, nil
	}
	f := buf[lenPrefix:total]
	if len(f) < fixedLen || f[0] != KindMessage {
		return 0, ErrMalformed
	}
	flags, nq := f[1], int(f[2])
	if flags&^(FlagPlain|FlagHeader|FlagInterest|FlagGone|FlagTo) != 0 {
		return 0, ErrMalformed // a newer peer's flag this node cannot honour
	}
	if flags&FlagInterest != 0 && (flags&^FlagGone != FlagInterest || nq > 1) || flags&(FlagInterest|FlagGone) == FlagGone {
		return 0, ErrMalformed // a hint is nothing else, with one queue at most
	}
	accLen := int(binary.LittleEndian.Uint16(f[3:]))
	subjLen := int(binary.LittleEndian.Uint16(f[5:]))
	replyLen := int(binary.LittleEndian.Uint16(f[7:]))
	hdrLen := uint64(binary.LittleEndian.Uint32(f[9:]))
	p := f[fixedLen:]
	m.Queues = m.Queues[:0]
	for range nq {
		if len(p) < 2 {
			return 0, ErrMalformed
		}
		ql := int(binary.LittleEndian.Uint16(p))
		if len(p) < 2+ql || ql == 0 {
			return 0, ErrMalformed
		}
		m.Queues = append(m.Queues, p[2:2+ql])
		p = p[2+ql:]
	}
	if len(p) < accLen+subjLen+replyLen || subjLen == 0 {
		return 0, ErrMalformed
	}
	m.Account, p = p[:accLen], p[accLen:]
	m.Subject, p = p[:subjLen], p[subjLen:]
	m.Reply, p = p[:replyLen], p[replyLen:]
	if replyLen == 0 {
		m.Reply = nil
	}
	m.To = nil
	if flags&FlagTo != 0 {
		if len(p) < 2 {
			return 0, ErrMalformed
		}
		tl := int(binary.LittleEndian.Uint16(p))
		if tl == 0 || len(p) < 2+tl {
			return 0, ErrMalformed
		}
		m.To, p = p[2:2+tl], p[2+tl:]
	}
	m.Body = p
	m.HeaderLen = -1
	if flags&FlagHeader != 0 {
		if hdrLen > uint64(len(p)) {
			return 0, ErrMalformed
		}
		m.HeaderLen = int(hdrLen)
	} else if hdrLen != 0 {
		return 0, ErrMalformed
	}
	m.Plain = flags&FlagPlain != 0
	m.Interest = flags&FlagInterest != 0
	m.Gone = flags&FlagGone != 0
	if m.Interest && (len(m.Reply) > 0 || len(m.Body) > 0) {
		return 0, ErrMalformed
	}
	return total, nil
}

// Hello handshake.

// MaxHelloLine bounds the hello line a listener reads.
const MaxHelloLine = 512

// AppendHello appends the dialing node's hello line.
func AppendHello(b []byte, from, to string) []byte {
	return fmt.Appendf(b, "SYMESH %s %s %s\r\n", Version, from, to)
}

// ParseHello reads a hello line (without its \r\n). It returns the version
// the dialer speaks even when the line is otherwise unusable, so the refusal
// can name it.
func ParseHello(line []byte) (version, from, to string, err error) {
	f := bytes.Fields(line)
	if len(f) < 2 || string(f[0]) != "SYMESH" {
		return "", "", "", errors.New("not a Switchyard mesh connection (no SYMESH hello)")
	}
	version = string(f[1])
	if version != Version {
		return version, "", "", fmt.Errorf("mesh protocol %s is not spoken here: this node speaks %s; upgrade the older node", version, Version)
	}
	if len(f) != 4 {
		return version, "", "", errors.New("malformed SYMESH hello: want SYMESH <version> <from> <to>")
	}
	return version, string(f[2]), string(f[3]), nil
}

// OK is the listener's acceptance of a hello.
var OK = []byte("+OK\r\n")

// AppendRefusal appends the listener's refusal line.
func AppendRefusal(b []byte, reason string) []byte {
	return fmt.Appendf(b, "-ERR '%s'\r\n", reason)
}
