package node

import (
	"net"
	"syscall"
	"unsafe"
)

// rawWriter writes to a TCP socket without blocking: Go's sockets are in
// non-blocking mode, and a RawConn.Write callback that always reports done
// makes exactly one writev attempt instead of parking on the poller.
type rawWriter struct {
	rc syscall.RawConn
}

func newRawWriter(tc *net.TCPConn) *rawWriter {
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return &rawWriter{rc: rc}
}

// maxIovecs bounds one writev (IOV_MAX is 1024 on Linux).
const maxIovecs = 64

// tryWritev writes as much of bufs as the socket takes now and returns the
// number of bytes written (0 on EAGAIN or error; the writer goroutine will
// meet any real error).
func (w *rawWriter) tryWritev(bufs [][]byte) int {
	var iov [maxIovecs]syscall.Iovec
	n := 0
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if n == maxIovecs {
			break
		}
		iov[n].Base = &b[0]
		iov[n].SetLen(len(b))
		n++
	}
	if n == 0 {
		return 0
	}
	written := 0
	w.rc.Write(func(fd uintptr) bool {
		r, _, errno := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
		if errno == 0 {
			written = int(r)
		}
		return true
	})
	return written
}
