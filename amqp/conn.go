package amqp

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/vhost"
)

const (
	// defaultHandshakeTimeout drops clients that connect and say nothing, as RabbitMQ does.
	defaultHandshakeTimeout = 10 * time.Second
	// closeOkTimeout bounds the wait for connection.close-ok after the server closed.
	closeOkTimeout = 3 * time.Second
	// silentCloseDelay is how long a client that failed to log in waits for
	// the socket to close (RabbitMQ's SILENT_CLOSE_DELAY): it slows down
	// password guessing.
	silentCloseDelay = 3 * time.Second
	// maxPendingOut is how many bytes may wait for the socket before queues
	// stop handing this connection deliveries; it bounds a slow consumer's
	// memory and lets its queue serve faster consumers.
	maxPendingOut = 1 << 20
)

// conn is one client connection. Its reader goroutine (serve) parses frames
// and runs channel methods inline; its writer goroutine flushes the outbound
// buffer that the reader and delivering queues append to.
type conn struct {
	srv *Server
	id  uint64
	nc  net.Conn
	log *slog.Logger
	fr  *wire.FrameReader
	io  connCounts
	dec wire.MethodDecoder

	// Set during the handshake, read-only after.
	frameMax     uint32
	channelMax   uint16
	heartbeat    time.Duration
	user         *broker.Account
	vh           *vhost.VHost
	cancelNotify bool // the client understands server-sent basic.cancel
	// blockedNotify: the client understands connection.blocked.
	blockedNotify bool
	// publisher is set once the connection published: only publishers are
	// held by resource alarms. Reader goroutine only.
	publisher bool
	// unblockReader wakes a reader held by an alarm when the connection
	// must close.
	unblockReader chan struct{}
	peerName      string // CN of the verified TLS client certificate, or ""
	// startOK is set once connection.start-ok arrived, with what it said;
	// connectedAt is when the socket was accepted. For the event exchange.
	startOK     bool
	clientProps wire.Table
	mechanism   string
	connectedAt time.Time
	counted     bool // counted in srv.open (MaxConnections)
	userCounted bool // counted against the user's max-connections

	// hb is the heartbeat for the writer goroutine; open is set after the handshake.
	hb   atomic.Int64
	open atomic.Bool

	// closing is set once connection.close went out; from then on only
	// close-ok or close is read. closedByPeer is set when the client closed
	// and has our close-ok: then everything is discarded until it hangs up.
	closing      atomic.Bool
	closedByPeer bool // reader goroutine only

	mu       sync.Mutex // guards channels (the reader changes it, the writer reads it)
	channels map[uint16]*channel

	outMu     sync.Mutex // guards the fields below
	out       []byte
	outClosed bool           // nothing more may be sent (connection.close is out, or the socket failed)
	needKick  bool           // a delivery was refused for a full buffer; kick queues once drained
	traces    []pendingTrace // deliveries the writer traces, while tracing is on
	deliver   wire.BasicDeliver
	// lastAck is where the publisher confirm (basic.ack) appended last ends
	// in out, -1 when out holds none that may be extended; see
	// channel.confirmPublish.
	lastAck        int
	lastAckChannel uint16

	// wmu serializes writes to the socket and guards spare and
	// writeDeadline: the writer goroutine holds it across its (blocking)
	// write, a reader flushing this connection takes it with TryLock and
	// makes one non-blocking write (flush.go). outMu may be taken under it.
	wmu           sync.Mutex
	spare         []byte
	writeDeadline time.Time
	// lastWrite is when output last reached the socket (Unix ns), for
	// heartbeats.
	lastWrite atomic.Int64
	// lastDirect is when a reader last wrote to this connection (Unix ns).
	lastDirect atomic.Int64
	// raw is the socket for non-blocking writes; nil (TLS, or a platform
	// without them) sends all output through the writer goroutine.
	raw syscall.RawConn
	// pending and nextPending link the connection into the server's
	// pending list (flush.go); inRun is set while the reader defers output
	// (reader goroutine only).
	pending     atomic.Bool
	nextPending *conn
	inRun       bool

	wake chan struct{} // capacity 1: tells the writer there is output
	done chan struct{} // closed when the reader ends; the writer then flushes and exits
}

func newConn(s *Server, nc net.Conn) *conn {
	id := s.nextID.Add(1)
	return &conn{
		srv:           s,
		id:            id,
		nc:            nc,
		log:           s.log.With("conn", id, "remote", nc.RemoteAddr().String()),
		frameMax:      s.cfg.FrameMax,
		channelMax:    s.cfg.ChannelMax,
		channels:      make(map[uint16]*channel),
		wake:          make(chan struct{}, 1),
		unblockReader: make(chan struct{}, 1),
		done:          make(chan struct{}),
		lastAck:       -1,
		connectedAt:   time.Now(),
		raw:           nonblockingConn(nc),
	}
}

// nonblockingConn returns nc's raw socket if readers may write to it
// directly (flush.go).
func nonblockingConn(nc net.Conn) syscall.RawConn {
	if !canWriteNonblocking {
		return nil
	}
	return rawConn(nc)
}

// serve runs the connection until it ends, then releases everything it held.
func (c *conn) serve() {
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	defer func() {
		c.cleanup()
		close(c.done)
		<-writerDone
		c.nc.Close()
	}()

	_ = c.nc.SetReadDeadline(time.Now().Add(c.srv.handshakeTimeout()))
	if err := wire.ReadProtocolHeader(c.nc); err != nil {
		if errors.Is(err, wire.ErrBadProtocolHeader) {
			// The spec's answer: our header, then close.
			_, _ = c.nc.Write(wire.ProtocolHeader)
		}
		return
	}
	c.fr = wire.NewFrameReader(countingReader{c.nc, &c.io}, c.frameMax)
	if err := c.handshake(); err != nil {
		switch {
		case errors.Is(err, errConnectionDone):
		case errors.Is(err, errSilentClose):
			// Like RabbitMQ, make a client that failed to log in wait
			// before it can try again; it hears nothing.
			c.drain(silentCloseDelay)
		default:
			c.fail(err)
			c.readLoop() // until the client's close-ok, bounded by closeOkTimeout
		}
		return
	}
	c.log.Debug("connection open", "user", c.user.Name(), "vhost", c.vh.Name)
	c.emitConnectionCreated()
	c.readLoop()
}

// readLoop reads frames until the connection ends.
func (c *conn) readLoop() {
	var deadlineSet time.Time
	defer c.endRun()
	for {
		if !c.fr.HasFrame() {
			// The next read may wait for the socket: first write what the
			// frames read so far produced.
			c.endRun()
		}
		if c.heartbeat > 0 && !c.closing.Load() {
			// Two missed heartbeat intervals end the connection, as in RabbitMQ.
			if now := time.Now(); now.Sub(deadlineSet) > time.Second {
				_ = c.nc.SetReadDeadline(now.Add(2 * c.heartbeat))
				deadlineSet = now
			}
		}
		if c.publisher && !c.closing.Load() {
			c.waitWhileBlocked()
			deadlineSet = time.Time{} // the client's heartbeats were not read meanwhile
		}
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.readFailed(err)
			return
		}
		if c.closing.Load() {
			if !c.closedByPeer && c.closeHandshake(f) {
				return
			}
			continue
		}
		if fastFrame(f.Type, f.Payload) {
			c.beginRun()
		} else {
			c.endRun() // the frame may take long: do not hold others' output
		}
		if err := c.handleFrame(f); err != nil {
			if errors.Is(err, errConnectionDone) {
				return
			}
			c.fail(err)
			if c.closing.Load() {
				continue
			}
			return
		}
	}
}

// errConnectionDone ends the read loop after an orderly close.
var errConnectionDone = errors.New("connection done")

// readFailed maps a frame-level read error to RabbitMQ's answer.
func (c *conn) readFailed(err error) {
	switch {
	case errors.Is(err, wire.ErrFrameTooLarge), errors.Is(err, wire.ErrBadFrameEnd), errors.Is(err, wire.ErrBadFrameType):
		if !c.closing.Load() {
			var fe *wire.BadFrameError
			if errors.As(err, &fe) {
				c.sendClose(newError(wire.FrameError, "%s", fe.Error()))
			} else {
				c.sendClose(newError(wire.FrameError, "%v", err))
			}
			// The stream is out of sync now; read nothing more from it, but
			// let the client take our close before the socket goes.
			c.drain(closeOkTimeout)
		}
	case errors.Is(err, os.ErrDeadlineExceeded):
		switch {
		case c.closing.Load():
		case !c.open.Load():
			c.log.Info("handshake timeout, closing connection")
		default:
			c.log.Info("missed heartbeats from client, closing connection")
		}
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	default:
		c.log.Debug("read failed", "err", err)
	}
}

// drain discards input until the client closes or the wait ends, so that
// closing our end does not reset the connection under a client that is
// still sending.
func (c *conn) drain(wait time.Duration) {
	_ = c.nc.SetReadDeadline(time.Now().Add(wait))
	_, _ = io.Copy(io.Discard, c.nc)
}

// closeHandshake handles a frame read after the server sent connection.close:
// everything but close-ok (or a crossing close) is discarded, as the spec says.
func (c *conn) closeHandshake(f wire.Frame) (done bool) {
	if f.Type != wire.FrameMethod || f.Channel != 0 {
		return false
	}
	m, err := c.dec.Decode(f.Payload)
	if err != nil {
		return false
	}
	switch m.(type) {
	case *wire.ConnectionCloseOk:
		return true
	case *wire.ConnectionClose:
		c.sendRaw(&wire.ConnectionCloseOk{}, 0)
		return true
	}
	return false
}

// fail reports err to the client: a channel error closes the channel, a
// connection error starts the connection close handshake.
func (c *conn) fail(err error) {
	pe := asProtoError(err)
	c.log.Info("closing connection", "code", pe.code, "reason", pe.text)
	c.sendClose(pe)
}

// sendClose sends connection.close once and arms the close-ok wait.
func (c *conn) sendClose(pe *protoError) {
	if c.closing.Swap(true) {
		return
	}
	c.outMu.Lock()
	if !c.outClosed {
		c.out = wire.AppendMethodFrame(c.out, 0, &wire.ConnectionClose{
			ReplyCode: pe.code, ReplyText: pe.replyText(), FailingClassID: pe.classID, FailingMethodID: pe.methodID,
		})
		c.outClosed = true
	}
	c.outMu.Unlock()
	c.signal()
	_ = c.nc.SetReadDeadline(time.Now().Add(closeOkTimeout))
	select {
	case c.unblockReader <- struct{}{}:
	default:
	}
}

// forceClose closes the connection from another goroutine (shutdown).
func (c *conn) forceClose(pe *protoError) {
	if !c.open.Load() {
		// Still in the handshake: just drop it.
		_ = c.nc.SetReadDeadline(time.Now())
		return
	}
	c.sendClose(pe)
}

// handleFrame dispatches one frame read after the handshake.
func (c *conn) handleFrame(f wire.Frame) error {
	switch f.Type {
	case wire.FrameHeartbeat:
		// RabbitMQ's checks, in its order: a heartbeat carries nothing, and
		// only on channel 0.
		if len(f.Payload) > 0 {
			return newError(wire.FrameError, "type %d, %s: unknown_frame", f.Type, wire.Octets(f.Payload))
		}
		if f.Channel != 0 {
			return newError(wire.UnexpectedFrame, "type %d, %s", f.Type, wire.Octets(f.Payload))
		}
		return nil
	case wire.FrameMethod:
		m, err := c.dec.Decode(f.Payload)
		if err != nil {
			var um *wire.UnknownMethodError
			if errors.As(err, &um) {
				return &protoError{code: wire.NotImplemented, text: fmt.Sprintf("unknown method %d/%d", um.ClassID, um.MethodID), classID: um.ClassID, methodID: um.MethodID}
			}
			return newError(wire.FrameError, "cannot decode method frame on channel %d: %v", f.Channel, err)
		}
		if f.Channel == 0 {
			return c.handleConnMethod(m)
		}
		ch := c.channels[f.Channel]
		if ch == nil {
			// A channel the server closed stays in the map until its
			// close-ok, so close and close-ok here are for a channel that
			// is not open: RabbitMQ refuses them like any other method.
			if _, ok := m.(*wire.ChannelOpen); ok {
				return c.openChannel(f.Channel)
			}
			return methodError(m, wire.ChannelError, "expected 'channel.open'")
		}
		return ch.handleMethod(m)
	case wire.FrameHeader, wire.FrameBody:
		if f.Channel == 0 {
			return newError(wire.UnexpectedFrame, "type %d, %s", f.Type, wire.Octets(f.Payload))
		}
		ch := c.channels[f.Channel]
		if ch == nil {
			return newError(wire.UnexpectedFrame, "expected method frame, got non method frame instead")
		}
		return ch.handleContent(f)
	}
	return newError(wire.FrameError, "unknown frame type %d", f.Type)
}

func methodError(m wire.Method, code uint16, format string, args ...any) *protoError {
	pe := newError(code, format, args...)
	pe.classID, pe.methodID = m.ClassID(), m.MethodID()
	return pe
}

func (c *conn) handleConnMethod(m wire.Method) error {
	switch m := m.(type) {
	case *wire.ConnectionClose:
		c.sendRaw(&wire.ConnectionCloseOk{}, 0)
		c.outMu.Lock()
		c.outClosed = true
		c.outMu.Unlock()
		// The client closes the socket once it has our close-ok; wait for
		// that (bounded) rather than racing it with our own close, which
		// would reset the connection under frames still in flight.
		c.closedByPeer = true
		c.closing.Store(true)
		_ = c.nc.SetReadDeadline(time.Now().Add(closeOkTimeout))
		return nil
	case *wire.ConnectionUpdateSecret:
		c.sendRaw(&wire.ConnectionUpdateSecretOk{}, 0)
		return nil
	default:
		// Any other method on channel 0, a connection method or not, as
		// RabbitMQ words it.
		return methodError(m, wire.ChannelError, "unexpected method in connection state running")
	}
}

func (c *conn) openChannel(id uint16) error {
	// RabbitMQ counts open channels rather than comparing channel numbers.
	if n := len(c.channels); c.channelMax > 0 && n >= int(c.channelMax) {
		return newError(wire.NotAllowed, "number of channels opened (%d) has reached the negotiated channel_max (%d)", n, c.channelMax)
	}
	// The user's max-channels spans all its connections; RabbitMQ names
	// no method in this close.
	if err := c.user.OpenChannel(); err != nil {
		return asProtoError(err)
	}
	ch := newChannel(c, id)
	c.srv.totals.chansOpened.Add(1)
	c.mu.Lock()
	c.channels[id] = ch
	c.mu.Unlock()
	c.sendRaw(&wire.ChannelOpenOk{}, id)
	ch.emitCreated()
	return nil
}

// removeChannel forgets a channel after its close completed.
func (c *conn) removeChannel(id uint16) {
	c.mu.Lock()
	_, had := c.channels[id]
	delete(c.channels, id)
	c.mu.Unlock()
	if had {
		c.user.CloseChannel()
	}
}

// cleanup releases what the connection holds: unacked messages go back to
// their queues, consumers leave, exclusive queues are deleted.
func (c *conn) cleanup() {
	c.mu.Lock()
	chs := make([]*channel, 0, len(c.channels))
	for _, ch := range c.channels {
		chs = append(chs, ch)
	}
	c.channels = map[uint16]*channel{}
	c.mu.Unlock()
	for _, ch := range chs {
		ch.release()
		c.user.CloseChannel()
	}
	if c.userCounted {
		c.user.Disconnect()
	}
	if c.startOK {
		c.emitConnectionClosed()
	}
	if c.vh != nil {
		c.vh.DeleteOwnedQueues(c.id)
		c.vh.Disconnect()
	}
	if c.counted {
		c.srv.open.Add(-1)
	}
	if c.open.Load() {
		c.srv.totals.connsClosed.Add(1)
	}
}

// sendRaw queues one method frame.
func (c *conn) sendRaw(m wire.Method, channel uint16) {
	c.outMu.Lock()
	if !c.outClosed {
		c.out = wire.AppendMethodFrame(c.out, channel, m)
	}
	c.outMu.Unlock()
	c.signal()
}

// sendContent queues a method with content (deliver, get-ok, return).
func (c *conn) sendContent(m wire.Method, channel uint16, props, body []byte) {
	c.outMu.Lock()
	if !c.outClosed {
		c.appendContentLocked(m, channel, props, body)
	}
	c.outMu.Unlock()
	c.signal()
}

func (c *conn) appendContentLocked(m wire.Method, channel uint16, props, body []byte) {
	c.out = wire.AppendMethodFrame(c.out, channel, m)
	c.out = wire.AppendHeaderFrame(c.out, channel, wire.ClassBasic, uint64(len(body)), props)
	c.out = wire.AppendBodyFrames(c.out, channel, body, c.frameMax)
}

// writeLoop flushes the outbound buffer in batches: whatever accumulated
// while the last write was in flight goes out in one write call.
func (c *conn) writeLoop() {
	var tick <-chan time.Time
	var ticker *time.Ticker
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	for {
		hb := time.Duration(c.hb.Load())
		if ticker == nil && hb > 0 {
			ticker = time.NewTicker(hb / 2)
			tick = ticker.C
		}
		done := false
		select {
		case <-c.wake:
		case <-tick:
			c.outMu.Lock()
			if len(c.out) == 0 && !c.outClosed && time.Since(time.Unix(0, c.lastWrite.Load())) >= hb/2 {
				c.out = wire.AppendHeartbeat(c.out)
			}
			c.outMu.Unlock()
		case <-c.done:
			done = true
		}
		if !c.writeOut() {
			return
		}
		if done {
			return
		}
	}
}

// writeOut writes everything queued, blocking, and reports whether the
// socket is still usable. Writer goroutine only.
func (c *conn) writeOut() bool {
	c.outMu.Lock()
	traces := c.traces
	c.traces = nil
	c.outMu.Unlock()
	for _, t := range traces {
		// A trace is a publish: it takes vhost and queue locks, so not
		// under wmu.
		c.traceDeliver(t)
	}
	c.wmu.Lock()
	c.outMu.Lock()
	buf := c.out
	c.out = c.spare[:0]
	c.lastAck = -1
	kick := c.needKick && len(buf) > 0
	c.needKick = false
	c.outMu.Unlock()
	if len(buf) > 0 {
		// Moving the deadline costs a timer update; once per 10 s is
		// enough, as every write still gets at least 20 s.
		if now := time.Now(); c.writeDeadline.Sub(now) < 20*time.Second {
			c.writeDeadline = now.Add(30 * time.Second)
			_ = c.nc.SetWriteDeadline(c.writeDeadline)
		}
		if _, err := c.nc.Write(buf); err != nil {
			c.writeFailed()
			c.wmu.Unlock()
			return false
		}
		c.io.sendBytes.Add(uint64(len(buf)))
		c.io.sendCount.Add(1)
		c.lastWrite.Store(time.Now().UnixNano())
	}
	if cap(buf) > 4*maxPendingOut {
		buf = nil // do not keep a burst's memory forever
	}
	c.spare = buf[:0]
	c.wmu.Unlock()
	if kick {
		c.kickConsumers()
	}
	return true
}

// kickConsumers lets every queue with a consumer on this connection try
// again, after the outbound buffer drained.
func (c *conn) kickConsumers() {
	c.mu.Lock()
	chs := make([]*channel, 0, len(c.channels))
	for _, ch := range c.channels {
		chs = append(chs, ch)
	}
	c.mu.Unlock()
	for _, ch := range chs {
		ch.kick()
	}
}
