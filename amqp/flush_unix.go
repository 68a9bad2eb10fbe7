//go:build unix

package amqp

import (
	"errors"
	"syscall"
)

// writeNonblocking makes one write attempt on the non-blocking socket and
// returns how much it took; a full socket buffer is not an error.
func writeNonblocking(rc syscall.RawConn, b []byte) (int, error) {
	var n int
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.Write(int(fd), b)
			if !errors.Is(werr, syscall.EINTR) {
				break
			}
		}
		return true // one attempt: never wait for the socket here
	})
	if n < 0 {
		n = 0
	}
	if errors.Is(werr, syscall.EAGAIN) {
		werr = nil
	}
	if err == nil {
		err = werr
	}
	return n, err
}

// canWriteNonblocking: this platform has writeNonblocking.
const canWriteNonblocking = true
