package amqp

import (
	"sync/atomic"
	"syscall"
	"time"
)

// Output flushing without a goroutine hand-off.
//
// A delivery appends frames to the consumer connection's outbound buffer.
// Waking that connection's writer goroutine for every delivery costs two
// scheduler switches (and, with idle cores, a spinning thread) per message,
// which at light load is most of the broker's CPU per message. So while a
// reader is working through a run of publishes, acks and content frames that
// arrived in one socket read, connections that get output are put on the
// server's pending list instead, and the reader writes them itself when the
// run ends, with one non-blocking write each. The writer goroutine stays the
// fallback: for what the non-blocking write could not take, for TLS, for
// heartbeats, traces and queue kicks, and whenever no reader is in a run.

// maxDirectWrite is the most a reader writes for another connection; more
// is left to that connection's writer goroutine.
const maxDirectWrite = 64 << 10

// directInterval is the least time between two direct writes to one
// connection: above some 5 000 flushes a second, its writer goroutine
// batches better than the readers do.
const directInterval = int64(200 * time.Microsecond)

// pendingList is the server's list of connections whose output waits for
// the end of a reader's run: a lock-free stack that is only ever emptied as
// a whole, so there is no ABA problem.
type pendingList struct {
	// deferring counts readers inside a run of fast frames; while it is
	// zero nothing is deferred.
	deferring atomic.Int32
	head      atomic.Pointer[conn]
}

// push adds c unless it is on the list already.
func (l *pendingList) push(c *conn) {
	if !c.pending.CompareAndSwap(false, true) {
		return
	}
	for {
		old := l.head.Load()
		c.nextPending = old
		if l.head.CompareAndSwap(old, c) {
			return
		}
	}
}

// flushAll empties the list and writes each connection's output.
func (l *pendingList) flushAll() {
	if l.head.Load() == nil {
		return
	}
	for c := l.head.Swap(nil); c != nil; {
		next := c.nextPending
		c.nextPending = nil
		c.pending.Store(false)
		c.flushNow()
		c = next
	}
}

// signal tells whoever writes c's output that there is some: the reader in a
// run, when one is, else the writer goroutine. It never blocks.
func (c *conn) signal() {
	if c.raw != nil && c.srv.pending.deferring.Load() > 0 {
		l := &c.srv.pending
		l.push(c)
		// A reader that ends its run after this load empties the list
		// after it, so the push is seen; if none is in a run any more,
		// nobody may drain it soon: wake the writer.
		if l.deferring.Load() > 0 {
			return
		}
	}
	c.wakeWriter()
}

// wakeWriter wakes the writer goroutine without blocking.
func (c *conn) wakeWriter() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// beginRun marks the reader as inside a run of fast frames: output signalled
// meanwhile is deferred to endRun. Reader goroutine only.
func (c *conn) beginRun() {
	if !c.inRun {
		c.inRun = true
		c.srv.pending.deferring.Add(1)
	}
}

// endRun ends the reader's run and writes what was deferred.
func (c *conn) endRun() {
	if c.inRun {
		c.inRun = false
		c.srv.pending.deferring.Add(-1)
		c.srv.pending.flushAll()
	}
}

// fastFrame reports whether handling f is quick and cannot block: content
// frames, basic.publish and the acknowledgements. A reader defers output only
// across those, so what it defers waits at most for the rest of one read.
func fastFrame(typ uint8, payload []byte) bool {
	switch typ {
	case 2, 3: // header, body
		return true
	case 1:
		if len(payload) < 4 || payload[0] != 0 || payload[1] != 60 || payload[2] != 0 {
			return false
		}
		switch payload[3] {
		case 40, 80, 90, 120: // publish, ack, reject, nack
			return true
		}
	}
	return false
}

// flushNow writes c's output with one non-blocking write, if no other write
// is in progress; what is left goes to the writer goroutine.
func (c *conn) flushNow() {
	now := time.Now().UnixNano()
	if now-c.lastDirect.Load() < directInterval {
		// Busy: the writer goroutine gathers more per write than a
		// reader per run, and the receiver is woken less often.
		c.wakeWriter()
		return
	}
	if !c.wmu.TryLock() {
		// The writer goroutine is writing; it looks again when done, but
		// only if told.
		c.wakeWriter()
		return
	}
	c.outMu.Lock()
	if len(c.out) == 0 {
		c.outMu.Unlock()
		c.wmu.Unlock()
		return
	}
	if c.needKick || len(c.traces) > 0 || len(c.out) > maxDirectWrite {
		// The writer goroutine does these after a write. A large buffer
		// means a consumer that reads slower than it gets: the socket
		// would take only part of it, and the rest would be moved down
		// on every attempt.
		c.outMu.Unlock()
		c.wmu.Unlock()
		c.wakeWriter()
		return
	}
	buf := c.out
	c.out = c.spare[:0]
	c.lastAck = -1
	c.outMu.Unlock()

	c.lastDirect.Store(now)
	n, err := writeNonblocking(c.raw, buf)
	if n > 0 {
		c.io.sendBytes.Add(uint64(n))
		c.io.sendCount.Add(1)
		c.lastWrite.Store(time.Now().UnixNano())
	}
	if err != nil {
		c.writeFailed()
		c.wmu.Unlock()
		return
	}
	if n == len(buf) {
		c.spare = buf[:0]
		c.wmu.Unlock()
		return
	}
	// The socket took part of it: the rest goes first, before what was
	// appended meanwhile, and the writer goroutine waits for the socket.
	c.outMu.Lock()
	rest := buf[:copy(buf, buf[n:])]
	cur := c.out
	c.out = append(rest, cur...)
	c.spare = cur[:0]
	c.outMu.Unlock()
	c.wmu.Unlock()
	c.wakeWriter()
}

// writeFailed ends output after a failed write: nothing more is queued, and
// closing the socket unblocks the reader. Called with wmu held.
func (c *conn) writeFailed() {
	c.outMu.Lock()
	c.outClosed = true
	c.out = nil
	c.outMu.Unlock()
	c.nc.Close()
}

// rawConn returns the socket's raw handle for non-blocking writes, or nil
// when writes must go through the net.Conn (TLS).
func rawConn(nc any) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}
