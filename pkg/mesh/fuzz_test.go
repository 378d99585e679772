package mesh

import (
	"bytes"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the frame decoder: it must never
// panic, never read past a frame, and whatever it accepts must encode back
// to the same bytes.
func FuzzDecode(f *testing.F) {
	for _, s := range samples {
		f.Add(encode(s))
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add(AppendInterest(nil, []byte("$G"), []byte("orders.>"), "", false))
	f.Add(AppendMessageTo(nil, []byte("$G"), []byte("orders.1"), []byte("_INBOX.x"), []byte("$JS.ACK.S.C.1.1.1.1.0"), nil, true, 4, []byte("hdr!body")))
	f.Add(AppendInterest(nil, []byte("A"), []byte("q.*"), "workers", true))
	// Unknown flag bits: once accepted and silently dropped.
	f.Add([]byte{0x0e, 0, 0, 0, 1, 0x31, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 'x'})
	f.Add([]byte{13, 0, 0, 0, 1, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 'x'})
	f.Fuzz(func(t *testing.T, data []byte) {
		var m Message
		for len(data) > 0 {
			n, err := Decode(data, &m, 1<<20)
			if err != nil || n == 0 {
				return
			}
			if n > len(data) {
				t.Fatalf("consumed %d of %d bytes", n, len(data))
			}
			var qs []string
			for _, q := range m.Queues {
				qs = append(qs, string(q))
			}
			again := AppendMessageTo(nil, m.Account, m.Subject, m.To, m.Reply, qs, m.Plain, m.HeaderLen, m.Body)
			if m.Interest {
				q := ""
				if len(qs) > 0 {
					q = qs[0]
				}
				again = AppendInterest(nil, m.Account, m.Subject, q, m.Gone)
			}
			if !bytes.Equal(again, data[:n]) {
				t.Fatalf("re-encoding differs:\n in  %x\n out %x", data[:n], again)
			}
			data = data[n:]
		}
	})
}
