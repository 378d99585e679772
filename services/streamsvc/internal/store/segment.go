package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// On disk a stream is a directory of segments, <first seq, 20 digits>.blk,
// each a run of records:
//
//	0  crc     uint32  CRC-32C (Castagnoli) of bytes 4..length
//	4  length  uint32  whole record, header included
//	8  kind    uint8   kindMsg, kindDelete or kindFloor
//	9  zero    uint8
//	10 subjLen uint16
//	12 hdrLen  uint32
//	16 seq     uint64
//	24 time    int64   unix nanoseconds
//	32 subject, header, data
//
// All integers are little-endian. A delete record lists the sequences it
// removes as uvarints (the first, then the differences) in its data. A
// floor record says every sequence below seq is gone, and carries LastSeq
// and the name of the previous segment (16 bytes of data) and LastTime (its
// time), so that an empty store remembers where it was. Every segment
// starts with one: its previous-segment name tells recovery that no segment
// went in between, so sequences missing from the end of that one were lost
// rather than deleted (other floor records leave it 0). Sealed segments get an index, <name>.idx
// (format below, at encodeIndex).
const (
	recHeaderSize = 32

	kindMsg     byte = 1
	kindDelete  byte = 2
	kindFloor   byte = 3
	kindDamaged byte = 0xff // in indexes and entries only: a damaged byte range

	maxSubject = 1<<16 - 1
	maxRecord  = 256 << 20

	deletesPerRecord = 8192
)

var (
	le         = binary.LittleEndian
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

func recordSize(subj, hdr, data int) int { return recHeaderSize + subj + hdr + data }

// recHeader is a decoded record header.
type recHeader struct {
	crc     uint32
	length  uint32
	kind    byte
	zero    byte
	subjLen int
	hdrLen  int
	seq     uint64
	time    int64
}

func parseHeader(b []byte) recHeader {
	return recHeader{
		crc:     le.Uint32(b[0:]),
		length:  le.Uint32(b[4:]),
		kind:    b[8],
		zero:    b[9],
		subjLen: int(le.Uint16(b[10:])),
		hdrLen:  int(le.Uint32(b[12:])),
		seq:     le.Uint64(b[16:]),
		time:    int64(le.Uint64(b[24:])),
	}
}

// plausible reports whether the header could be one this package wrote;
// the CRC decides.
func (h recHeader) plausible() bool {
	if h.length < recHeaderSize || h.length > maxRecord || h.zero != 0 {
		return false
	}
	if recHeaderSize+h.subjLen+h.hdrLen > int(h.length) {
		return false
	}
	switch h.kind {
	case kindMsg:
		return h.subjLen > 0
	case kindDelete, kindFloor:
		return h.subjLen == 0 && h.hdrLen == 0
	}
	return false
}

// appendRecord encodes one record onto b.
func appendRecord(b []byte, kind byte, seq uint64, t int64, subject string, hdr, data []byte) []byte {
	start := len(b)
	n := recordSize(len(subject), len(hdr), len(data))
	b = append(b, make([]byte, recHeaderSize)...)
	h := b[start:]
	le.PutUint32(h[4:], uint32(n))
	h[8] = kind
	le.PutUint16(h[10:], uint16(len(subject)))
	le.PutUint32(h[12:], uint32(len(hdr)))
	le.PutUint64(h[16:], seq)
	le.PutUint64(h[24:], uint64(t))
	b = append(b, subject...)
	b = append(b, hdr...)
	b = append(b, data...)
	le.PutUint32(b[start:], crc32Castagnoli(b[start+4:]))
	return b
}

// entry is one record, or one damaged byte range, of a segment.
type entry struct {
	kind    byte
	off     int64
	length  int64 // bytes on disk
	seq     uint64
	time    int64
	subject string // kindMsg only
}

// floorMark is a decoded floor record.
type floorMark struct {
	floor, lastSeq uint64
	lastTime       int64
	prevSeg        uint64 // the segment before this one, in a segment's first floor record
}

// segContent is what a segment holds: every entry in file order, and the
// decoded deletes and floors.
type segContent struct {
	entries []entry
	deletes []uint64
	floors  []floorMark
	end     int64 // where the records end; the rest was cut off as a torn tail
}

func appendDeletes(b []byte, seqs []uint64) []byte {
	prev := uint64(0)
	for _, s := range seqs {
		b = binary.AppendUvarint(b, s-prev)
		prev = s
	}
	return b
}

// decodeControl decodes a delete or floor record's body into c.
func (c *segContent) decodeControl(h recHeader, body []byte) error {
	switch h.kind {
	case kindDelete:
		// Check the whole list before taking any of it.
		for p := body; len(p) > 0; {
			_, n := binary.Uvarint(p)
			if n <= 0 {
				return errors.New("malformed delete list")
			}
			p = p[n:]
		}
		prev := uint64(0)
		for len(body) > 0 {
			d, n := binary.Uvarint(body)
			prev += d
			c.deletes = append(c.deletes, prev)
			body = body[n:]
		}
	case kindFloor:
		if len(body) != 16 {
			return errors.New("malformed floor record")
		}
		c.floors = append(c.floors, floorMark{floor: h.seq, lastSeq: le.Uint64(body), lastTime: h.time, prevSeg: le.Uint64(body[8:])})
	}
	return nil
}

// segReader reads a segment through a window, so scanning neither reads the
// whole file into memory nor makes a system call per record.
type segReader struct {
	f    File
	size int64
	buf  []byte
	at   int64 // file offset of buf[0]
}

const scanWindow = 1 << 20

// read returns bytes [off, off+n), valid until the next call.
func (r *segReader) read(off int64, n int) ([]byte, error) {
	if off < 0 || off+int64(n) > r.size {
		return nil, io.ErrUnexpectedEOF
	}
	if off >= r.at && off+int64(n) <= r.at+int64(len(r.buf)) {
		return r.buf[off-r.at : off-r.at+int64(n)], nil
	}
	want := int64(max(n, scanWindow))
	want = min(want, r.size-off)
	if int64(cap(r.buf)) < want {
		r.buf = make([]byte, want)
	}
	r.buf = r.buf[:want]
	if _, err := r.f.ReadAt(r.buf, off); err != nil && !errors.Is(err, io.EOF) {
		r.buf = r.buf[:0]
		return nil, err
	}
	r.at = off
	return r.buf[:n], nil
}

// recordAt checks for a whole, valid record at off. It returns the header
// as read even when the record is not valid (it may still name a sequence).
func (r *segReader) recordAt(off int64) (recHeader, []byte, bool, error) {
	if r.size-off < recHeaderSize {
		return recHeader{}, nil, false, nil
	}
	hb, err := r.read(off, recHeaderSize)
	if err != nil {
		return recHeader{}, nil, false, err
	}
	h := parseHeader(hb)
	if !h.plausible() || off+int64(h.length) > r.size {
		return h, nil, false, nil
	}
	rec, err := r.read(off, int(h.length))
	if err != nil {
		return h, nil, false, err
	}
	if crc32Castagnoli(rec[4:]) != h.crc {
		return h, nil, false, nil
	}
	return h, rec, true, nil
}

// resync finds the first valid record at or after from, or -1.
func (r *segReader) resync(from int64) (int64, error) {
	for p := from; p+recHeaderSize <= r.size; p++ {
		hb, err := r.read(p, recHeaderSize)
		if err != nil {
			return -1, err
		}
		if h := parseHeader(hb); !h.plausible() || p+int64(h.length) > r.size {
			continue
		}
		if _, _, ok, err := r.recordAt(p); err != nil || ok {
			return p, err
		}
	}
	return -1, nil
}

// interner shares one string per subject among a segment's entries.
type interner map[string]string

func (in interner) get(b []byte) string {
	if s, ok := in[string(b)]; ok {
		return s
	}
	s := string(b)
	in[s] = s
	return s
}

// scanSegment reads every record of a segment, verifying each. Damaged
// records become kindDamaged entries: when the length is believable and a
// valid record follows it, the damage is that one record; otherwise the
// scan looks for the next valid record byte by byte. Damage with no valid
// record after it is a torn tail in the last segment (an unacknowledged
// write, cut off by the caller at c.end) and damage in a sealed one.
func scanSegment(f File, size int64, name uint64, last bool, in interner) (segContent, error) {
	r := &segReader{f: f, size: size}
	var c segContent
	off := int64(0)
	for off < size {
		h, rec, ok, err := r.recordAt(off)
		if err != nil {
			return c, err
		}
		if ok {
			e := entry{kind: h.kind, off: off, length: int64(h.length), seq: h.seq, time: h.time}
			body := rec[recHeaderSize:]
			if h.kind == kindMsg {
				e.subject = in.get(body[:h.subjLen])
			} else if err := c.decodeControl(h, body); err != nil {
				e = entry{kind: kindDamaged, off: off, length: int64(h.length)}
			}
			c.entries = append(c.entries, e)
			off += int64(h.length)
			continue
		}
		claim := uint64(0)
		if h.kind == kindMsg {
			claim = h.seq
		}
		next := int64(-1)
		if end := off + int64(h.length); h.plausible() && end < size {
			if _, _, ok, err := r.recordAt(end); err != nil {
				return c, err
			} else if ok {
				next = end
			}
		}
		if next < 0 {
			if next, err = r.resync(off + 1); err != nil {
				return c, err
			}
		}
		if next < 0 {
			if last {
				c.end = off
				validateClaims(c.entries, name)
				return c, nil
			}
			next = size
		}
		c.entries = append(c.entries, entry{kind: kindDamaged, off: off, length: next - off, seq: claim})
		off = next
	}
	c.end = size
	validateClaims(c.entries, name)
	return c, nil
}

// validateClaims keeps the sequence a damaged record's header names only
// when it fits between its neighbours (with nothing after it, only the next
// sequence fits): a damaged header may carry any number.
func validateClaims(ents []entry, name uint64) {
	prev := name - 1
	for i := range ents {
		e := &ents[i]
		switch {
		case e.kind == kindMsg:
			prev = max(prev, e.seq)
		case e.kind == kindDamaged && e.seq != 0:
			next := uint64(0)
			for _, f := range ents[i+1:] {
				if f.kind == kindMsg {
					next = f.seq
					break
				}
			}
			if e.seq <= prev || (next != 0 && e.seq >= next) || (next == 0 && e.seq != prev+1) {
				e.seq = 0
			} else {
				prev = e.seq
			}
		}
	}
}

// The index of a sealed segment, <name>.idx:
//
//	"SWYIDX01", segment name (first seq) uint64, segment size uint64,
//	entry count uint64,
//	per entry: kind uint8, subjLen uint16, length uint64, seq uint64,
//	           time int64, subject,
//	CRC-32C of all of the above, uint32.
//
// Entries tile the segment from offset 0, so offsets are implied. Delete and
// floor records are listed but read from the segment at open (they are few);
// damaged ranges are listed so a reopen reports the same loss.
const idxMagic = "SWYIDX01"

const idxEntryFixed = 1 + 2 + 8 + 8 + 8

func encodeIndex(name uint64, segSize int64, ents []entry) []byte {
	b := make([]byte, 0, len(idxMagic)+24+len(ents)*(idxEntryFixed+16)+4)
	b = append(b, idxMagic...)
	b = le.AppendUint64(b, name)
	b = le.AppendUint64(b, uint64(segSize))
	b = le.AppendUint64(b, uint64(len(ents)))
	for _, e := range ents {
		b = append(b, e.kind)
		b = le.AppendUint16(b, uint16(len(e.subject)))
		b = le.AppendUint64(b, uint64(e.length))
		b = le.AppendUint64(b, e.seq)
		b = le.AppendUint64(b, uint64(e.time))
		b = append(b, e.subject...)
	}
	return le.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeIndex(b []byte, name uint64, segSize int64, in interner) ([]entry, error) {
	if len(b) < len(idxMagic)+24+4 || string(b[:len(idxMagic)]) != idxMagic {
		return nil, errors.New("not an index file")
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != le.Uint32(b[len(b)-4:]) {
		return nil, errors.New("index checksum mismatch")
	}
	p := body[len(idxMagic):]
	if got := le.Uint64(p); got != name {
		return nil, fmt.Errorf("index is for segment %d", got)
	}
	p = p[8:]
	if got := int64(le.Uint64(p)); got != segSize {
		return nil, fmt.Errorf("index is for %d bytes of segment, it has %d", got, segSize)
	}
	n := le.Uint64(p[8:])
	p = p[16:]
	if n > uint64(len(p))/idxEntryFixed {
		return nil, errors.New("index entry count too large")
	}
	ents := make([]entry, 0, n)
	off := int64(0)
	for range n {
		if len(p) < idxEntryFixed {
			return nil, errors.New("index truncated")
		}
		e := entry{
			kind:   p[0],
			off:    off,
			length: int64(le.Uint64(p[3:])),
			seq:    le.Uint64(p[11:]),
			time:   int64(le.Uint64(p[19:])),
		}
		sl := int(le.Uint16(p[1:]))
		p = p[idxEntryFixed:]
		if len(p) < sl || e.length <= 0 || e.length > segSize-off {
			return nil, errors.New("index entry out of range")
		}
		switch e.kind {
		case kindMsg:
			if sl == 0 || e.length < int64(recordSize(sl, 0, 0)) || e.seq < name {
				return nil, errors.New("index message entry malformed")
			}
			e.subject = in.get(p[:sl])
		case kindDelete, kindFloor, kindDamaged:
			if sl != 0 {
				return nil, errors.New("index entry malformed")
			}
		default:
			return nil, errors.New("index entry of unknown kind")
		}
		p = p[sl:]
		off += e.length
		ents = append(ents, e)
	}
	if off != segSize || len(p) != 0 {
		return nil, errors.New("index does not cover the segment")
	}
	return ents, nil
}

func crc32Castagnoli(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
