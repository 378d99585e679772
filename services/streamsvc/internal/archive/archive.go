// Package archive reads and writes stream backups in the format of
// nats-server v2.15 (what `nats stream backup` saves as stream.arc.s2):
// an s2-compressed stream that starts with the magic "NATSARC1" and then
// holds entries, each
//
//	uvarint len(name), varint time (unix ns), uvarint seq,
//	uvarint header size, uvarint payload size, name, header, payload
//
// A backup's entries are, in order: "state.json" (the stream's state as
// STREAM.INFO words it), one "consumers/<name>" per consumer ({"config",
// "state"} JSON), one entry per message (its subject as the name, its
// sequence, store time, headers and payload), and an end marker: an
// entry whose fields are all zero. A backup without the end marker was
// cut short.
//
// Nothing in an archive is ever used as a file path: names are subjects,
// or consumer names the caller validates as such.
package archive

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	// s2 is the compression nats-server and the nats CLI use for
	// backups; it comes with nats.go already.
	"github.com/klauspost/compress/s2"
)

// Magic starts every archive (after decompression).
const Magic = "NATSARC1"

// StateName and ConsumerPrefix name the entries that are not messages.
const (
	StateName      = "state.json"
	ConsumerPrefix = "consumers/"
)

// MaxName bounds an entry's name: a subject (the store's limit).
const MaxName = 1<<16 - 1

var (
	// ErrTruncated: the archive ended before its end marker.
	ErrTruncated = errors.New("backup was truncated")
	// ErrNotArchive: the data is not a NATSARC1 backup.
	ErrNotArchive = errors.New("not a stream backup of nats-server v2.15 or later (no NATSARC1 header; tar.s2 backups of older servers are not supported)")
	// ErrInvalid: an entry's fields are out of bounds.
	ErrInvalid = errors.New("invalid archive entry")
)

// Entry is one record of an archive.
type Entry struct {
	Name   string
	Time   int64  // unix nanoseconds
	Seq    uint64 // a message's sequence; 0 for other entries
	Header []byte // a message's NATS header block, nil if none
	Data   []byte
}

// End reports whether e is the end marker.
func (e *Entry) End() bool {
	return e.Name == "" && e.Time == 0 && e.Seq == 0 && len(e.Header) == 0 && len(e.Data) == 0
}

// Writer writes an archive, compressed, to an io.Writer.
type Writer struct {
	z     *s2.Writer
	buf   []byte
	magic bool
}

// NewWriter starts an archive on w. Close ends the compressed stream (it
// does not write the end marker: WriteEnd does).
func NewWriter(w io.Writer) *Writer {
	// One block at a time: the snapshot streams as it is written, and
	// memory stays at one block.
	return &Writer{z: s2.NewWriter(w, s2.WriterConcurrency(1))}
}

// Write adds an entry.
func (w *Writer) Write(e Entry) error {
	if len(e.Name) > MaxName {
		return fmt.Errorf("%w: name of %d bytes", ErrInvalid, len(e.Name))
	}
	b := w.buf[:0]
	if !w.magic {
		b = append(b, Magic...)
		w.magic = true
	}
	b = binary.AppendUvarint(b, uint64(len(e.Name)))
	b = binary.AppendVarint(b, e.Time)
	b = binary.AppendUvarint(b, e.Seq)
	b = binary.AppendUvarint(b, uint64(len(e.Header)))
	b = binary.AppendUvarint(b, uint64(len(e.Data)))
	b = append(b, e.Name...)
	w.buf = b
	if _, err := w.z.Write(b); err != nil {
		return err
	}
	if _, err := w.z.Write(e.Header); err != nil {
		return err
	}
	_, err := w.z.Write(e.Data)
	return err
}

// WriteEnd adds the end marker.
func (w *Writer) WriteEnd() error { return w.Write(Entry{}) }

// Flush hands what is buffered to the underlying writer.
func (w *Writer) Flush() error { return w.z.Flush() }

// Close flushes and ends the compressed stream.
func (w *Writer) Close() error { return w.z.Close() }

// Reader reads an archive's entries from its compressed form.
type Reader struct {
	r       *bufio.Reader
	maxBody int
	magic   bool
	err     error
	body    []byte
}

// NewReader reads the archive in r; an entry with more than maxBody bytes
// of header and payload is refused (memory stays bounded by it).
func NewReader(r io.Reader, maxBody int) *Reader {
	return &Reader{r: bufio.NewReader(s2.NewReader(r)), maxBody: maxBody}
}

// Next returns the next entry; its Header and Data are valid until the
// next call. After the end marker it returns io.EOF. Damage is an error:
// the s2 reader's for bad compression, ErrTruncated when the data stops
// short, ErrNotArchive or ErrInvalid for what is not an archive.
func (r *Reader) Next() (Entry, error) {
	if r.err != nil {
		return Entry{}, r.err
	}
	e, err := r.next()
	if err != nil {
		r.err = err
	} else if e.End() {
		r.err = io.EOF
	}
	return e, err
}

func (r *Reader) next() (Entry, error) {
	if !r.magic {
		var m [len(Magic)]byte
		if _, err := io.ReadFull(r.r, m[:]); err != nil {
			return Entry{}, short(err)
		}
		if string(m[:]) != Magic {
			return Entry{}, ErrNotArchive
		}
		r.magic = true
	}
	var f [5]uint64 // name length, time, seq, header size, payload size
	for i := range f {
		var err error
		if f[i], err = r.uvarint(); err != nil {
			return Entry{}, err
		}
	}
	nameLen, seq, hdrLen, dataLen := f[0], f[2], f[3], f[4]
	t := int64(f[1]>>1) ^ -int64(f[1]&1) // zigzag, as binary.PutVarint
	if nameLen > MaxName {
		return Entry{}, fmt.Errorf("%w: name of %d bytes", ErrInvalid, nameLen)
	}
	if hdrLen > uint64(r.maxBody) || dataLen > uint64(r.maxBody)-hdrLen {
		return Entry{}, fmt.Errorf("%w: entry of %d+%d bytes is over the %d-byte limit", ErrInvalid, hdrLen, dataLen, r.maxBody)
	}
	n := int(nameLen + hdrLen + dataLen)
	if cap(r.body) < n {
		r.body = make([]byte, n)
	}
	b := r.body[:n]
	if _, err := io.ReadFull(r.r, b); err != nil {
		return Entry{}, short(err)
	}
	e := Entry{Name: string(b[:nameLen]), Time: t, Seq: seq}
	b = b[nameLen:]
	if hdrLen > 0 {
		e.Header = b[:hdrLen:hdrLen]
	}
	if dataLen > 0 {
		e.Data = b[hdrLen:]
	}
	return e, nil
}

// uvarint reads one unsigned varint.
func (r *Reader) uvarint() (uint64, error) {
	var v uint64
	for shift := 0; ; shift += 7 {
		c, err := r.r.ReadByte()
		if err != nil {
			return 0, short(err)
		}
		if shift == 63 && c > 1 {
			return 0, fmt.Errorf("%w: a number overflows 64 bits", ErrInvalid)
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, nil
		}
	}
}

// short turns the end of the data into ErrTruncated and keeps other
// errors (the s2 reader's own for damaged compression, or the source's).
func short(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrTruncated
	}
	return err
}
