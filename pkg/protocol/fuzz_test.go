package protocol

import (
	"strings"
	"testing"
)

// FuzzParser feeds arbitrary bytes cut into arbitrary reads. The parser must
// not panic or hang, must give the same handler calls and the same error
// however the stream is cut, and must hand the handler only well-formed
// arguments (see recorder).
//
// cuts chooses the read sizes (each byte is one read of 1 + b%64 bytes,
// cycled); maxControl and maxPayload choose small limits so short inputs
// reach them (0: the defaults).
func FuzzParser(f *testing.F) {
	f.Add([]byte("CONNECT {}\r\nSUB a 1\r\nPUB a 5\r\nhello\r\nPING\r\n"), []byte{3, 1, 4}, uint16(0), uint16(0), true)
	f.Fuzz(func(t *testing.T, stream, cuts []byte, maxControl, maxPayload uint16, headers bool) {
		l := limits{headers: headers}
		if maxControl > 0 {
			l.maxControl = int(maxControl % 512)
			if l.maxControl == 0 {
				l.maxControl = 1
			}
		}
		if maxPayload > 0 {
			l.maxPayload = int(maxPayload % 2048)
			if l.maxPayload == 0 {
				l.maxPayload = 1
			}
		}
		want := feed(l, stream, nil)
		for _, op := range want.ops {
			if strings.HasPrefix(op, "BAD ") {
				t.Fatalf("handler got malformed arguments: %s\nstream %q", op, stream)
			}
		}
		ways := map[string][]int{"1-byte reads": fixed(1, len(stream))}
		if len(cuts) > 0 {
			var sizes []int
			for total, i := 0, 0; total < len(stream); i++ {
				n := 1 + int(cuts[i%len(cuts)])%64
				sizes = append(sizes, n)
				total += n
			}
			ways["reads from cuts"] = sizes
		}
		if len(stream) > 1 {
			ways["two reads"] = []int{1 + int(maxControl^maxPayload)%(len(stream)-1)}
		}
		for how, sizes := range ways {
			got := feed(l, stream, sizes)
			if got.String() != want.String() {
				t.Fatalf("stream %q with limits %+v parsed in %s %v:\n got  %v\n want %v (one read)",
					stream, l, how, sizes, got, want)
			}
		}
	})
}
