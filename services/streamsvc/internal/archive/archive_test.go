package archive

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/stretchr/testify/require"
)

func entries() []Entry {
	return []Entry{
		{Name: StateName, Time: 5, Data: []byte(`{"messages":2}`)},
		{Name: ConsumerPrefix + "C1", Time: 5, Data: []byte(`{"config":{},"state":{}}`)},
		{Name: "orders.1", Time: 1795471445832434189, Seq: 1, Header: []byte("NATS/1.0\r\nX: 1\r\n\r\n"), Data: []byte("hello")},
		{Name: "orders.2", Time: -3, Seq: 9},
	}
}

func encode(t testing.TB, es []Entry, end bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, e := range es {
		require.NoError(t, w.Write(e))
	}
	if end {
		require.NoError(t, w.WriteEnd())
	}
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func readAll(data []byte, maxBody int) ([]Entry, error) {
	r := NewReader(bytes.NewReader(data), maxBody)
	var out []Entry
	for {
		e, err := r.Next()
		if err != nil {
			return out, err
		}
		if e.End() {
			if _, err := r.Next(); err != io.EOF {
				return out, errors.New("Next after the end marker is not io.EOF")
			}
			return out, nil
		}
		e.Header, e.Data = bytes.Clone(e.Header), bytes.Clone(e.Data)
		out = append(out, e)
	}
}

func TestArchiveRoundTrip(t *testing.T) {
	got, err := readAll(encode(t, entries(), true), 1<<20)
	require.NoError(t, err)
	require.Equal(t, entries(), got)
}

// An archive nats-server v2.15.2 wrote (`nats stream backup` of a stream
// with one consumer, messages 1 and 3-5, 2 deleted) reads as such.
func TestArchiveReadsNatsServerBackup(t *testing.T) {
	data, err := os.ReadFile("testdata/nats-server-2.15.2.arc.s2")
	require.NoError(t, err)
	got, err := readAll(data, 1<<20)
	require.NoError(t, err)
	require.Len(t, got, 6)
	require.Equal(t, StateName, got[0].Name)
	require.Contains(t, string(got[0].Data), `"num_deleted":1`)
	require.Equal(t, ConsumerPrefix+"C1", got[1].Name)
	var seqs []uint64
	for _, e := range got[2:] {
		seqs = append(seqs, e.Seq)
		require.Equal(t, "NATS/1.0\r\nX-A: v"+e.Name[4:]+"\r\n\r\n", string(e.Header))
		require.Equal(t, "hello "+e.Name[4:], string(e.Data))
	}
	require.Equal(t, []uint64{1, 3, 4, 5}, seqs)
}

// Every cut of an archive is refused as truncated (or as damaged
// compression), never read as complete.
func TestArchiveTruncated(t *testing.T) {
	data := encode(t, entries(), true)
	raw, err := io.ReadAll(s2.NewReader(bytes.NewReader(data)))
	require.NoError(t, err)
	for n := range len(raw) {
		var buf bytes.Buffer
		w := s2.NewWriter(&buf)
		_, _ = w.Write(raw[:n])
		require.NoError(t, w.Close())
		_, err := readAll(buf.Bytes(), 1<<20)
		require.ErrorIs(t, err, ErrTruncated, "cut at %d of %d", n, len(raw))
	}
	for n := range len(data) {
		_, err := readAll(data[:n], 1<<20)
		require.Error(t, err, "compressed cut at %d of %d", n, len(data))
	}
}

func TestArchiveRefusesWhatIsNotOne(t *testing.T) {
	_, err := readAll([]byte("definitely not s2"), 1<<20)
	require.ErrorIs(t, err, s2.ErrCorrupt)

	var buf bytes.Buffer
	w := s2.NewWriter(&buf)
	_, _ = w.Write([]byte("ustar and friends, an old tar backup"))
	require.NoError(t, w.Close())
	_, err = readAll(buf.Bytes(), 1<<20)
	require.ErrorIs(t, err, ErrNotArchive)

	// An entry over the limit is refused before its body is read.
	_, err = readAll(encode(t, []Entry{{Name: "a", Seq: 1, Data: make([]byte, 100)}}, true), 99)
	require.ErrorIs(t, err, ErrInvalid)

	// A number longer than 64 bits.
	buf.Reset()
	w = s2.NewWriter(&buf)
	_, _ = w.Write(append([]byte(Magic), bytes.Repeat([]byte{0xff}, 11)...))
	require.NoError(t, w.Close())
	_, err = readAll(buf.Bytes(), 1<<20)
	require.ErrorIs(t, err, ErrInvalid)
}

// FuzzReader: whatever the input, the reader returns entries or an
// error, within its limit, without panicking.
func FuzzReader(f *testing.F) {
	f.Add(encode(f, entries(), true))
	f.Add(encode(f, entries(), false))
	if data, err := os.ReadFile("testdata/nats-server-2.15.2.arc.s2"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		es, _ := readAll(data, 1<<16)
		for _, e := range es {
			require.LessOrEqual(t, len(e.Header)+len(e.Data), 1<<16)
			require.LessOrEqual(t, len(e.Name), MaxName)
		}
	})
}
