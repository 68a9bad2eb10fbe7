//go:build !unix

package amqp

import (
	"errors"
	"syscall"
)

// writeNonblocking is not used on this platform: every write goes through
// the writer goroutine.
func writeNonblocking(syscall.RawConn, []byte) (int, error) {
	return 0, errors.New("amqp: no non-blocking write on this platform")
}

const canWriteNonblocking = false
