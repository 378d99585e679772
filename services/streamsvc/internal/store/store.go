// Package store keeps a JetStream stream's messages: in memory (NewMemory)
// or in a segmented, checksummed log on disk (OpenFile).
//
// Both stores share one in-memory index (index.go) of live sequences and
// per-subject counts, so they answer every query the same way; the file
// store adds where each message lives on disk (file.go, segment.go).
package store

import (
	"errors"
	"strings"
	"time"
)

// Msg is one stored message.
type Msg struct {
	Seq     uint64
	Subject string
	Header  []byte // raw NATS header block ("NATS/1.0\r\n...\r\n\r\n"), nil if none
	Data    []byte // nil when empty
	Time    int64  // unix nanoseconds when stored
}

// State summarises a store.
type State struct {
	Msgs       uint64
	Bytes      uint64    // sum of Size(msg) over live messages
	FirstSeq   uint64    // first live sequence (LastSeq+1 when empty)
	LastSeq    uint64    // last sequence ever assigned (survives deletes and purges)
	FirstTime  int64     // time of the first live message (0 when empty)
	LastTime   int64     // time of the message with LastSeq (survives deletes and purges)
	NumDeleted int       // interior gaps (deleted sequences between FirstSeq and LastSeq)
	Lost       *LostData // messages found damaged at open or read (nil: none)
}

// LostData reports damage: the sequences of damaged messages that could be
// identified, and the bytes on disk of every damaged record or range
// (including ranges whose sequence could not be read).
type LostData struct {
	Msgs  []uint64
	Bytes uint64
}

// Size is the accounted size of a message, as nats-server counts it:
// len(subject)+len(header)+len(data)+16.
func Size(subject string, hdr, data []byte) uint64 {
	return uint64(len(subject)+len(hdr)+len(data)) + 16
}

var (
	// ErrNotFound: the sequence was never stored, or was deleted or purged.
	ErrNotFound = errors.New("store: no message with that sequence")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrCorrupt wraps a read that found the message damaged on disk; the
	// error names the segment file and offset, and the sequence is in
	// State.Lost from then on.
	ErrCorrupt = errors.New("store: message damaged on disk")
)

// Store is a stream's messages. One goroutine at a time calls the mutating
// methods (the stream's own); Get/State/LoadLast/LoadNext/SubjectCounts may
// be called concurrently with them.
//
// Messages returned by a store are the caller's to read but not to modify:
// the memory store hands out its own copy.
type Store interface {
	// Append stores msgs with consecutive sequences after LastSeq (it sets
	// msgs[i].Seq and, when 0, msgs[i].Time) and returns once they are
	// durable per the store's sync policy. A batch is one group commit: one
	// fsync for all of them.
	Append(msgs []Msg) error
	Get(seq uint64) (Msg, error)
	// LoadLast is the newest live message whose subject matches filter (NATS
	// wildcards * and >; "" or ">" = any).
	LoadLast(filter string) (Msg, error)
	// LoadNext is the first live message with seq >= start whose subject
	// matches filter. When that message is damaged on disk it returns an
	// ErrCorrupt error together with Msg{Seq: seq}, so the caller can go on
	// from seq+1.
	LoadNext(filter string, start uint64) (Msg, error)
	// NextSeq is LoadNext's sequence, from the index alone (no read): how
	// consumers count what is pending without loading it.
	NextSeq(filter string, start uint64) (uint64, bool)
	// Deleted lists the sequences missing between the first and last
	// live messages (stream info's deleted_details).
	Deleted() []uint64
	Delete(seq uint64) (bool, error) // false if it was not there
	// Purge removes live messages matching subject filter ("" = all) with
	// seq < upTo (0 = no bound), keeping the newest keep of them (0 = none
	// kept); returns how many went. Purging everything sets FirstSeq to
	// LastSeq+1.
	Purge(filter string, upTo, keep uint64) (uint64, error)
	// Compact removes every message with seq < seq (for max_msgs / max_bytes
	// / max_age limits the caller enforces); FirstSeq becomes at least seq.
	// Compacting past LastSeq+1 moves LastSeq to seq-1, so the next message
	// gets seq.
	Compact(seq uint64) (uint64, error)
	// SubjectCounts counts live messages per subject matching filter (for
	// max_msgs_per_subject and stream info subjects); it is an in-memory
	// index, cheap to ask often.
	SubjectCounts(filter string) map[string]uint64
	// SubjectMsgs counts the live messages on one literal subject, without
	// the map SubjectCounts builds (it is asked per published message).
	SubjectMsgs(subject string) uint64
	State() State
	Close() error
}

// SyncPolicy says when appended data reaches the disk.
type SyncPolicy int

const (
	// SyncAlways: fsync before Append returns (the default: an acknowledged
	// message survives power loss).
	SyncAlways SyncPolicy = iota
	// SyncInterval: fsync every Interval in the background.
	SyncInterval
	// SyncNever: leave it to the OS.
	SyncNever
)

// FileConfig configures OpenFile.
type FileConfig struct {
	Dir          string        // the stream's own directory, created if missing
	SegmentBytes int64         // roll to a new segment past this (default 8 MiB)
	Sync         SyncPolicy    // default SyncAlways
	Interval     time.Duration // for SyncInterval (default 2 min)
	FS           FS            // nil = the real file system; tests pass a fake
	// Log receives operator messages (damage found, incomplete writes cut
	// off, indexes rebuilt); nil = discard.
	Log func(format string, args ...any)
}

const (
	defaultSegmentBytes = 8 << 20
	defaultInterval     = 2 * time.Minute
)

// matchesAll reports whether filter selects every subject.
func matchesAll(filter string) bool { return filter == "" || filter == ">" }

// isLiteral reports whether filter names one subject: no token is a wildcard.
// A token such as "a*" is a literal, as in nats-server.
func isLiteral(filter string) bool {
	if filter == "" {
		return false
	}
	for tok, rest, more := strings.Cut(filter, "."); ; tok, rest, more = strings.Cut(rest, ".") {
		if tok == "*" || tok == ">" {
			return false
		}
		if !more {
			return true
		}
	}
}

// subjectMatch reports whether the literal subject matches filter: tokens
// split on '.', "*" matches one token, ">" (last) one or more; "" matches all.
func subjectMatch(filter, subject string) bool {
	if matchesAll(filter) {
		return true
	}
	for {
		ftok, frest, fmore := strings.Cut(filter, ".")
		if ftok == ">" && !fmore {
			return subject != ""
		}
		stok, srest, smore := strings.Cut(subject, ".")
		if ftok != "*" && ftok != stok {
			return false
		}
		if !fmore || !smore {
			return fmore == smore
		}
		filter, subject = frest, srest
	}
}
