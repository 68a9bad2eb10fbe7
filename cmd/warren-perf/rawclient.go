package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/amqp/wire"
)

// The raw client is a lean AMQP 0-9-1 client built on amqp/wire, made for
// this tool's hot loops: publishes are encoded into one reused buffer and
// written through a 64 KiB bufio.Writer, so many share one write syscall;
// deliveries are parsed in place from the frame reader's buffer. Neither
// allocates per message. It speaks just what warren-perf needs: PLAIN
// login, heartbeats off, one channel per producer or consumer.

// writeBufSize is the socket write buffer: a flush is one syscall.
const writeBufSize = 64 << 10

// rawFlushEvery bounds how long a publish may sit in the write buffer when
// the producer never has to wait (unlimited rate, no confirms, slow filling).
const rawFlushEvery = 2 * time.Millisecond

// amqpError is a channel.close or connection.close sent by the broker.
type amqpError struct {
	scope             string // "channel" or "connection"
	code              uint16
	text              string
	classID, methodID uint16
}

func (e *amqpError) Error() string {
	return fmt.Sprintf("%s closed by the broker: %d %s (class %d, method %d)", e.scope, e.code, e.text, e.classID, e.methodID)
}

// errClosed is returned once the connection was closed by us.
var errClosed = errors.New("connection closed")

// rawConn is one AMQP connection. Frames are read by one goroutine at a time
// (the setup code, then the producer's reader or the consumer); writes go
// through w under wmu, from any goroutine.
type rawConn struct {
	nc  net.Conn
	fr  *wire.FrameReader
	dec wire.MethodDecoder

	wmu  sync.Mutex
	w    *bufio.Writer
	wbuf []byte // scratch for encoding, guarded by wmu
	ack  wire.BasicAck

	frameMax    uint32 // negotiated; 0 = no limit
	channelMax  uint16
	lastChannel uint16

	// flushOnRead flushes pending writes whenever the reader is about to
	// block on the socket: a consumer's acks go out before it waits for
	// more deliveries. Set before reading starts.
	flushOnRead bool

	blocked atomic.Bool   // connection.blocked received, not yet unblocked
	closing atomic.Bool   // we sent connection.close: send nothing more
	notify  chan struct{} // capacity 1: confirms arrived, or unblocked
	// async is set when a goroutine owns the reading (see readerDone).
	async      bool
	readerDone chan struct{}
}

// connReader is the frame reader's source: the socket, flushing our pending
// writes first when asked to.
type connReader struct{ c *rawConn }

func (r connReader) Read(p []byte) (int, error) {
	c := r.c
	if c.flushOnRead {
		if err := c.flush(); err != nil {
			return 0, err
		}
	}
	return c.nc.Read(p)
}

// dialRaw connects, logs in and negotiates: the server's frame_max and
// channel_max are accepted, heartbeats are off.
func dialRaw(uri, name string, timeout time.Duration) (*rawConn, error) {
	u, err := amqp091.ParseURI(uri)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "amqp" {
		return nil, fmt.Errorf("the raw client speaks amqp:// only (use -client amqp091 for %s://)", u.Scheme)
	}
	nc, err := net.DialTimeout("tcp", net.JoinHostPort(u.Host, strconv.Itoa(u.Port)), timeout)
	if err != nil {
		return nil, err
	}
	c := newRawConn(nc)
	_ = nc.SetDeadline(time.Now().Add(timeout))
	if err := c.handshake(u.Username, u.Password, u.Vhost, name); err != nil {
		_ = nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

func newRawConn(nc net.Conn) *rawConn {
	c := &rawConn{
		nc:         nc,
		w:          bufio.NewWriterSize(nc, writeBufSize),
		wbuf:       make([]byte, 0, 4096),
		notify:     make(chan struct{}, 1),
		readerDone: make(chan struct{}),
	}
	c.fr = wire.NewFrameReader(connReader{c}, 0)
	return c
}

func (c *rawConn) handshake(user, pass, vhost, name string) error {
	c.wmu.Lock()
	_, _ = c.w.Write(wire.ProtocolHeader)
	c.wmu.Unlock()
	if err := c.flush(); err != nil {
		return err
	}
	m, err := c.await(0, 10, 10)
	if err != nil {
		return fmt.Errorf("waiting for connection.start: %w", err)
	}
	start := m.(*wire.ConnectionStart)
	if !strings.Contains(" "+start.Mechanisms+" ", " PLAIN ") {
		return fmt.Errorf("broker does not offer PLAIN (offers %q)", start.Mechanisms)
	}
	err = c.call(0, &wire.ConnectionStartOk{
		ClientProperties: wire.Table{
			"product":         "warren-perf",
			"connection_name": name,
			"capabilities": wire.Table{
				"publisher_confirms":     true,
				"basic.nack":             true,
				"connection.blocked":     true,
				"consumer_cancel_notify": true,
			},
		},
		Mechanism: "PLAIN",
		Response:  "\x00" + user + "\x00" + pass,
		Locale:    "en_US",
	})
	if err != nil {
		return err
	}
	if m, err = c.await(0, 10, 30); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	tune := m.(*wire.ConnectionTune)
	c.frameMax, c.channelMax = tune.FrameMax, tune.ChannelMax
	c.fr.SetFrameMax(c.frameMax)
	if err := c.call(0, &wire.ConnectionTuneOk{ChannelMax: tune.ChannelMax, FrameMax: tune.FrameMax}); err != nil {
		return err
	}
	if _, err := c.rpc(0, &wire.ConnectionOpen{VirtualHost: vhost}, 10, 41); err != nil {
		return fmt.Errorf("open vhost %q: %w", vhost, err)
	}
	return nil
}

// send encodes a method frame into the write buffer.
func (c *rawConn) send(ch uint16, m wire.Method) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = wire.AppendMethodFrame(c.wbuf[:0], ch, m)
	_, err := c.w.Write(c.wbuf)
	return err
}

// call sends a method and flushes.
func (c *rawConn) call(ch uint16, m wire.Method) error {
	if err := c.send(ch, m); err != nil {
		return err
	}
	return c.flush()
}

func (c *rawConn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.w.Buffered() == 0 {
		return nil
	}
	return c.w.Flush()
}

// rpc sends a synchronous method and waits for its reply, (classID, methodID).
func (c *rawConn) rpc(ch uint16, m wire.Method, classID, methodID uint16) (wire.Method, error) {
	if err := c.call(ch, m); err != nil {
		return nil, err
	}
	return c.await(ch, classID, methodID)
}

// await reads frames until the method (classID, methodID) arrives on ch,
// handling connection-level methods and a channel.close on the way. Only
// for use while no other goroutine reads.
func (c *rawConn) await(ch uint16, classID, methodID uint16) (wire.Method, error) {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		if f.Type != wire.FrameMethod {
			continue
		}
		m, err := c.dec.Decode(f.Payload)
		if err != nil {
			return nil, err
		}
		if f.Channel == ch && m.ClassID() == classID && m.MethodID() == methodID {
			return m, nil
		}
		if err := c.control(f.Channel, m); err != nil {
			return nil, err
		}
	}
}

// control handles the methods any reader may meet besides its own: the
// broker closing the connection or a channel (answered, and returned as an
// error), flow control, and our close confirmed (errClosed).
func (c *rawConn) control(ch uint16, m wire.Method) error {
	switch m := m.(type) {
	case *wire.ConnectionClose:
		_ = c.call(0, &wire.ConnectionCloseOk{})
		return &amqpError{scope: "connection", code: m.ReplyCode, text: m.ReplyText, classID: m.FailingClassID, methodID: m.FailingMethodID}
	case *wire.ConnectionCloseOk:
		return errClosed
	case *wire.ChannelClose:
		_ = c.call(ch, &wire.ChannelCloseOk{})
		return &amqpError{scope: "channel", code: m.ReplyCode, text: m.ReplyText, classID: m.FailingClassID, methodID: m.FailingMethodID}
	case *wire.ConnectionBlocked:
		c.blocked.Store(true)
	case *wire.ConnectionUnblocked:
		c.blocked.Store(false)
		c.signal()
	case *wire.BasicCancel:
		return fmt.Errorf("consumer %q cancelled by the broker", m.ConsumerTag)
	}
	return nil
}

// signal wakes a producer waiting for confirms or for the end of a block.
func (c *rawConn) signal() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// openChannel opens the next channel number.
func (c *rawConn) openChannel() (uint16, error) {
	if c.channelMax != 0 && c.lastChannel >= c.channelMax {
		return 0, fmt.Errorf("channel_max %d reached", c.channelMax)
	}
	c.lastChannel++
	ch := c.lastChannel
	if _, err := c.rpc(ch, &wire.ChannelOpen{}, 20, 11); err != nil {
		return 0, err
	}
	return ch, nil
}

// close closes the connection politely: connection.close, then close-ok,
// read by whoever owns the reading. It gives up after closeTimeout.
func (c *rawConn) close() error {
	const closeTimeout = 30 * time.Second
	if c.closing.Swap(true) {
		return nil
	}
	defer c.nc.Close()
	_ = c.nc.SetWriteDeadline(time.Now().Add(closeTimeout))
	if err := c.call(0, &wire.ConnectionClose{ReplyCode: 200, ReplyText: "bye"}); err != nil {
		return err
	}
	if c.async {
		select {
		case <-c.readerDone:
		case <-time.After(closeTimeout):
		}
		return nil
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(closeTimeout))
	_, err := c.await(0, 10, 51)
	return err
}

// appendPublish appends basic.publish, its content header (props already
// encoded) and the body frames.
func (c *rawConn) appendPublish(b []byte, ch uint16, pub *wire.BasicPublish, props, body []byte) []byte {
	b = wire.AppendMethodFrame(b, ch, pub)
	b = wire.AppendHeaderFrame(b, ch, wire.ClassBasic, uint64(len(body)), props)
	return wire.AppendBodyFrames(b, ch, body, c.frameMax)
}

// write copies an encoded frame sequence into the write buffer.
func (c *rawConn) write(b []byte) error {
	c.wmu.Lock()
	_, err := c.w.Write(b)
	c.wmu.Unlock()
	return err
}

// sendAck buffers basic.ack; the consumer's next wait for data flushes it.
func (c *rawConn) sendAck(ch uint16, tag uint64, multiple bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ack = wire.BasicAck{DeliveryTag: tag, Multiple: multiple}
	c.wbuf = wire.AppendMethodFrame(c.wbuf[:0], ch, &c.ack)
	_, err := c.w.Write(c.wbuf)
	return err
}

// parseDeliver returns the delivery tag of a basic.deliver method payload,
// without decoding (and allocating) its strings.
func parseDeliver(p []byte) (tag uint64, ok bool) {
	if len(p) < 5 || p[0] != 0 || p[1] != 60 || p[2] != 0 || p[3] != 60 {
		return 0, false
	}
	off := 5 + int(p[4])
	if len(p) < off+8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(p[off:]), true
}

// rawChannel is a channel of the admin connection, for the topology.
type rawChannel struct {
	c  *rawConn
	id uint16
}

type rawAdmin struct{ c *rawConn }

func (a rawAdmin) channel() (topoChannel, error) {
	id, err := a.c.openChannel()
	if err != nil {
		return nil, err
	}
	return &rawChannel{c: a.c, id: id}, nil
}

func (a rawAdmin) close() error { return a.c.close() }

func (r *rawChannel) exchangeDeclare(name, kind string, durable bool) error {
	_, err := r.c.rpc(r.id, &wire.ExchangeDeclare{Exchange: name, Type: kind, Durable: durable}, 40, 11)
	return err
}

func (r *rawChannel) queueDeclare(name string, durable, autoDelete bool, args amqp091.Table) error {
	_, err := r.c.rpc(r.id, &wire.QueueDeclare{Queue: name, Durable: durable, AutoDelete: autoDelete, Arguments: wire.Table(args)}, 50, 11)
	return err
}

func (r *rawChannel) queuePurge(name string) error {
	_, err := r.c.rpc(r.id, &wire.QueuePurge{Queue: name}, 50, 31)
	return err
}

func (r *rawChannel) queueBind(queue, key, exchange string, args amqp091.Table) error {
	_, err := r.c.rpc(r.id, &wire.QueueBind{Queue: queue, Exchange: exchange, RoutingKey: key, Arguments: wire.Table(args)}, 50, 21)
	return err
}

func (r *rawChannel) queueDelete(name string) error {
	_, err := r.c.rpc(r.id, &wire.QueueDelete{Queue: name}, 50, 41)
	return err
}

func (r *rawChannel) exchangeDelete(name string) error {
	_, err := r.c.rpc(r.id, &wire.ExchangeDelete{Exchange: name}, 40, 21)
	return err
}

func (r *rawChannel) close() error {
	_, err := r.c.rpc(r.id, &wire.ChannelClose{ReplyCode: 200, ReplyText: "bye"}, 20, 41)
	return err
}

// confirmTracker counts publisher confirms: tags are 1, 2, 3... in publish
// order, each confirmed once, singly or by a multiple ack/nack. Tags confirmed
// out of order are marked in a ring that covers the confirm window.
type confirmTracker struct {
	low  uint64 // lowest tag not yet confirmed
	done []bool
	mask uint64
}

func newConfirmTracker(window int) *confirmTracker {
	n := 1
	for n < 2*window {
		n <<= 1
	}
	return &confirmTracker{low: 1, done: make([]bool, n), mask: uint64(n - 1)}
}

// settle records a confirm and returns how many messages it newly confirms.
func (t *confirmTracker) settle(tag uint64, multiple bool) int64 {
	if tag < t.low {
		return 0
	}
	var n int64
	if multiple {
		for ; t.low <= tag; t.low++ {
			i := t.low & t.mask
			if t.done[i] {
				t.done[i] = false
			} else {
				n++
			}
		}
		return n
	}
	if tag != t.low {
		if tag-t.low > t.mask || t.done[tag&t.mask] {
			return 0
		}
		t.done[tag&t.mask] = true
		return 1
	}
	t.low++
	for t.done[t.low&t.mask] {
		t.done[t.low&t.mask] = false
		t.low++
	}
	return 1
}
