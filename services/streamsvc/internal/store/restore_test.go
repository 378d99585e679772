package store

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func restorer(s Store) Restorer {
	if r, ok := s.(*reopener); ok {
		s = r.Store
	}
	return s.(Restorer)
}

func at(seq uint64, subject string, t int64) Msg {
	return Msg{Seq: seq, Subject: subject, Header: []byte("NATS/1.0\r\nA: b\r\n\r\n"), Data: []byte(subject), Time: t}
}

// A restored stream keeps its sequences, times and gaps, through a reopen
// of the file store, and takes new messages after them.
func TestStoreRestoreKeepsSequencesAndGaps(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		s := k.open(t)
		r := restorer(s)
		require.NoError(t, r.AppendAt([]Msg{at(5, "a", 100), at(6, "b", 200), at(9, "a", 300)}))
		// A gap longer than one delete record holds.
		require.NoError(t, r.AppendAt([]Msg{at(9+2*deletesPerRecord, "c", 400)}))
		require.NoError(t, r.SkipTo(20+2*deletesPerRecord, 500))
		check := func(s Store) {
			st := s.State()
			require.Equal(t, uint64(4), st.Msgs)
			require.Equal(t, uint64(5), st.FirstSeq)
			require.Equal(t, uint64(20+2*deletesPerRecord), st.LastSeq)
			require.Equal(t, int64(100), st.FirstTime)
			require.Equal(t, int64(500), st.LastTime)
			require.Equal(t, int(st.LastSeq-st.FirstSeq+1-st.Msgs), st.NumDeleted)
			require.Nil(t, st.Lost)
			m, err := s.Get(9)
			require.NoError(t, err)
			require.Equal(t, at(9, "a", 300), m)
			_, err = s.Get(7)
			require.ErrorIs(t, err, ErrNotFound)
			require.Equal(t, []uint64{7, 8}, s.Deleted()[:2])
		}
		check(s)
		s = k.reopen(t, s)
		check(s)
		require.NoError(t, s.Append([]Msg{msg("d", "new")}))
		m, err := s.Get(21 + 2*deletesPerRecord)
		require.NoError(t, err)
		require.Equal(t, "d", m.Subject)
		s = k.reopen(t, s)
		require.Equal(t, uint64(5), s.State().Msgs)
	})
}

// A restored stream whose start was purged, or that is empty, starts
// where it did.
func TestStoreRestorePurgedStart(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		s := k.open(t)
		require.NoError(t, restorer(s).AppendAt([]Msg{at(1000, "a", 1), at(1001, "a", 2)}))
		s = k.reopen(t, s)
		st := s.State()
		require.Equal(t, uint64(1000), st.FirstSeq)
		require.Equal(t, uint64(1001), st.LastSeq)
		require.Zero(t, st.NumDeleted)

		e := k.open(t)
		require.NoError(t, restorer(e).SkipTo(50, 7))
		e = k.reopen(t, e)
		st = e.State()
		require.Equal(t, uint64(51), st.FirstSeq)
		require.Equal(t, uint64(50), st.LastSeq)
		require.Zero(t, st.Msgs)
		require.NoError(t, e.Append([]Msg{msg("x", "y")}))
		require.Equal(t, uint64(51), e.State().LastSeq)
	})
}

// Many restored messages roll segments (and the store drops none of them).
func TestStoreRestoreRollsSegments(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		s := k.open(t)
		seq := uint64(0)
		for i := range 50 {
			var batch []Msg
			for j := range 4 {
				seq += uint64(1 + (i+j)%3) // gaps of 0, 1 and 2
				batch = append(batch, at(seq, fmt.Sprintf("s.%d", j), int64(seq)))
			}
			require.NoError(t, restorer(s).AppendAt(batch))
		}
		s = k.reopen(t, s)
		st := s.State()
		require.Equal(t, uint64(200), st.Msgs)
		require.Equal(t, seq, st.LastSeq)
		require.Nil(t, st.Lost)
	})
}

func TestStoreRestoreRefusesDisorder(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		s := k.open(t)
		r := restorer(s)
		require.NoError(t, r.AppendAt([]Msg{at(3, "a", 1)}))
		require.Error(t, r.AppendAt([]Msg{at(3, "a", 1)}))
		require.Error(t, r.AppendAt([]Msg{at(5, "a", 1), at(4, "a", 1)}))
		require.Error(t, r.AppendAt([]Msg{{Seq: 9}}), "no subject")
		require.Equal(t, uint64(1), s.State().Msgs)
	})
}
