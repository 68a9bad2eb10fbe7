package conformance

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// timeout bounds every wait in the suite, so a missing frame fails a test
// instead of hanging it.
const timeout = 5 * time.Second

// requireAMQPError checks that err is an *amqp091.Error with the given reply
// code and, when prefix is not empty, a reply text starting with prefix.
func requireAMQPError(t testing.TB, err error, code int, prefix string) {
	t.Helper()
	require.Error(t, err)
	var ae *amqp091.Error
	require.True(t, errors.As(err, &ae), "want *amqp091.Error, got %T: %v", err, err)
	require.Equal(t, code, ae.Code, "reply code (text %q)", ae.Reason)
	if prefix != "" {
		require.True(t, strings.HasPrefix(ae.Reason, prefix), "reply text %q does not start with %q", ae.Reason, prefix)
	}
}

// notifyClose registers for the channel's close before an asynchronous error
// (a publish) can close it.
func notifyClose(ch *amqp091.Channel) chan *amqp091.Error {
	return ch.NotifyClose(make(chan *amqp091.Error, 1))
}

// requireClosedWith waits for a channel or connection close carrying code.
func requireClosedWith(t testing.TB, c chan *amqp091.Error, code int, prefix string) {
	t.Helper()
	select {
	case e, ok := <-c:
		require.True(t, ok, "closed without an error, want %d", code)
		require.NotNil(t, e)
		requireAMQPError(t, e, code, prefix)
	case <-time.After(timeout):
		t.Fatalf("no close with %d within %s", code, timeout)
	}
}

// requireUsable checks that a channel still works after another one failed.
func requireUsable(t testing.TB, ch *amqp091.Channel) {
	t.Helper()
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	require.NoError(t, err)
	_, err = ch.QueueDelete(q.Name, false, false, false)
	require.NoError(t, err)
}

// requireConnUsable opens a new channel on conn and uses it.
func requireConnUsable(t testing.TB, conn *amqp091.Connection) {
	t.Helper()
	ch, err := conn.Channel()
	require.NoError(t, err)
	requireUsable(t, ch)
	require.NoError(t, ch.Close())
}

// dialChannel dials url, opens a channel, and closes the connection when the
// test ends.
func dialChannel(t testing.TB, url string) *amqp091.Channel {
	t.Helper()
	conn, err := amqp091.Dial(url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	require.NoError(t, err)
	return ch
}

// cleanupQueue deletes a queue at the end of the test through a fresh
// connection, since the test's own channel may be closed by then.
func (b *testBroker) cleanupQueue(t testing.TB, name string) {
	t.Helper()
	t.Cleanup(func() { b.deleteLater(func(ch *amqp091.Channel) { _, _ = ch.QueueDelete(name, false, false, false) }) })
}

// cleanupExchange deletes an exchange at the end of the test.
func (b *testBroker) cleanupExchange(t testing.TB, name string) {
	t.Helper()
	t.Cleanup(func() { b.deleteLater(func(ch *amqp091.Channel) { _ = ch.ExchangeDelete(name, false, false) }) })
}

func (b *testBroker) deleteLater(f func(*amqp091.Channel)) {
	conn, err := amqp091.DialConfig(b.URL, amqp091.Config{Dial: amqp091.DefaultDial(timeout)})
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	f(ch)
}

// declareQueue declares a plain, non-durable queue with a unique name and
// deletes it when the test ends.
func declareQueue(t testing.TB, b *testBroker, ch *amqp091.Channel, suffix string, args amqp091.Table) string {
	t.Helper()
	name := uniqueName(t, suffix)
	_, err := ch.QueueDeclare(name, false, false, false, false, args)
	require.NoError(t, err)
	b.cleanupQueue(t, name)
	return name
}

// declareExchange declares a non-durable exchange with a unique name and
// deletes it when the test ends.
func declareExchange(t testing.TB, b *testBroker, ch *amqp091.Channel, kind, suffix string, args amqp091.Table) string {
	t.Helper()
	name := uniqueName(t, suffix)
	require.NoError(t, ch.ExchangeDeclare(name, kind, false, false, false, false, args))
	b.cleanupExchange(t, name)
	return name
}

// publish sends a text message and fails the test on error.
func publish(t testing.TB, ch *amqp091.Channel, exchange, key, body string) {
	t.Helper()
	require.NoError(t, ch.Publish(exchange, key, false, false, amqp091.Publishing{Body: []byte(body)}))
}

// recv waits for one delivery.
func recv(t testing.TB, d <-chan amqp091.Delivery) amqp091.Delivery {
	t.Helper()
	select {
	case m, ok := <-d:
		require.True(t, ok, "delivery channel closed")
		return m
	case <-time.After(timeout):
		t.Fatalf("no delivery within %s", timeout)
		return amqp091.Delivery{}
	}
}

// requireNoDelivery checks that nothing arrives for a short while. It is the
// one place the suite waits for an absence.
func requireNoDelivery(t testing.TB, d <-chan amqp091.Delivery) {
	t.Helper()
	select {
	case m := <-d:
		t.Fatalf("unexpected delivery %q", m.Body)
	case <-time.After(300 * time.Millisecond):
	}
}

// bodies returns the message bodies of a queue, read with basic.get and
// acknowledged, until it is empty.
func drain(t testing.TB, ch *amqp091.Channel, queue string) []string {
	t.Helper()
	var out []string
	for {
		m, ok, err := ch.Get(queue, true)
		require.NoError(t, err)
		if !ok {
			return out
		}
		out = append(out, string(m.Body))
	}
}

// requireQueueLen waits until a queue holds n ready messages.
func requireQueueLen(t testing.TB, ch *amqp091.Channel, queue string, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
		require.NoError(t, err)
		return q.Messages == n
	}, timeout, 20*time.Millisecond, "queue %s should hold %d messages", queue, n)
}

// --- raw protocol -----------------------------------------------------------

// Frame types and the frame-end octet (AMQP 0-9-1 section 4.2.3).
const (
	frameMethod    = 1
	frameHeader    = 2
	frameBody      = 3
	frameHeartbeat = 8
	frameEnd       = 0xCE
)

// protocolHeader is what an AMQP 0-9-1 client sends first.
const protocolHeader = "AMQP\x00\x00\x09\x01"

// rawFrame is one frame as it travels on the wire.
type rawFrame struct {
	Type    byte
	Channel uint16
	Payload []byte
}

// bytes encodes the frame with a correct frame end.
func (f rawFrame) bytes() []byte {
	b := []byte{f.Type}
	b = binary.BigEndian.AppendUint16(b, f.Channel)
	b = binary.BigEndian.AppendUint32(b, uint32(len(f.Payload)))
	b = append(b, f.Payload...)
	return append(b, frameEnd)
}

// methodFrame builds a method frame for class/method with encoded arguments.
func methodFrame(channel, class, method uint16, args ...[]byte) rawFrame {
	p := binary.BigEndian.AppendUint16(nil, class)
	p = binary.BigEndian.AppendUint16(p, method)
	for _, a := range args {
		p = append(p, a...)
	}
	return rawFrame{Type: frameMethod, Channel: channel, Payload: p}
}

// Argument encoders for hand-built methods.
func shortStr(s string) []byte { return append([]byte{byte(len(s))}, s...) }
func longStr(s string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(s))), s...)
}
func short(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func long(v uint32) []byte  { return binary.BigEndian.AppendUint32(nil, v) }
func octet(v byte) []byte   { return []byte{v} }
func emptyTable() []byte    { return long(0) }

// rawConn is a hand-driven AMQP connection.
type rawConn struct {
	t    testing.TB
	conn net.Conn
}

// dialRaw opens a TCP connection to the broker without any AMQP traffic.
func dialRaw(t testing.TB, b *testBroker) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", b.Addr, timeout)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(3*timeout)))
	return &rawConn{t: t, conn: c}
}

func (r *rawConn) write(b []byte) {
	r.t.Helper()
	_, err := r.conn.Write(b)
	require.NoError(r.t, err)
}

func (r *rawConn) send(f rawFrame) { r.t.Helper(); r.write(f.bytes()) }

// read reads one frame, skipping heartbeats.
func (r *rawConn) read() rawFrame {
	r.t.Helper()
	for {
		var h [7]byte
		_, err := io.ReadFull(r.conn, h[:])
		require.NoError(r.t, err, "reading frame header")
		n := binary.BigEndian.Uint32(h[3:])
		p := make([]byte, n+1)
		_, err = io.ReadFull(r.conn, p)
		require.NoError(r.t, err, "reading frame payload")
		require.Equal(r.t, byte(frameEnd), p[n], "frame end")
		f := rawFrame{Type: h[0], Channel: binary.BigEndian.Uint16(h[1:]), Payload: p[:n]}
		if f.Type != frameHeartbeat {
			return f
		}
	}
}

// readMethod reads a frame and checks it is class/method.
func (r *rawConn) readMethod(class, method uint16) rawFrame {
	r.t.Helper()
	f := r.read()
	require.Equal(r.t, byte(frameMethod), f.Type, "frame type")
	require.GreaterOrEqual(r.t, len(f.Payload), 4)
	got := [2]uint16{binary.BigEndian.Uint16(f.Payload), binary.BigEndian.Uint16(f.Payload[2:])}
	require.Equal(r.t, [2]uint16{class, method}, got, "class/method")
	return f
}

// tune is the server's connection.tune.
type tune struct {
	ChannelMax uint16
	FrameMax   uint32
	Heartbeat  uint16
}

// handshake runs the client side of the opening handshake as guest on "/"
// up to open-ok, accepting the server's tune values but disabling heartbeats.
func (r *rawConn) handshake() tune {
	r.t.Helper()
	return r.handshakeTune(func(tn *tune) { tn.Heartbeat = 0 })
}

// handshakeTune is handshake with adjust changing the server's tune values
// into the client's tune-ok.
func (r *rawConn) handshakeTune(adjust func(*tune)) tune {
	r.t.Helper()
	tn := r.login("guest", "guest", adjust)
	r.openVhost("/")
	r.readMethod(10, 41) // open-ok
	return tn
}

// login sends the protocol header, answers connection.start with PLAIN
// credentials and connection.tune with the adjusted values.
func (r *rawConn) login(user, password string, adjust func(*tune)) tune {
	r.t.Helper()
	r.sendStartOK(user, password)
	f := r.readMethod(10, 30) // connection.tune
	tn := tune{
		ChannelMax: binary.BigEndian.Uint16(f.Payload[4:]),
		FrameMax:   binary.BigEndian.Uint32(f.Payload[6:]),
		Heartbeat:  binary.BigEndian.Uint16(f.Payload[10:]),
	}
	ok := tn
	adjust(&ok)
	r.send(methodFrame(0, 10, 31, short(ok.ChannelMax), long(ok.FrameMax), short(ok.Heartbeat))) // tune-ok
	return tn
}

// sendStartOK sends the protocol header, reads connection.start and answers
// it. The client properties announce authentication_failure_close, so that a
// refused login gets a connection.close rather than a dropped socket.
func (r *rawConn) sendStartOK(user, password string) {
	r.t.Helper()
	r.write([]byte(protocolHeader))
	r.readMethod(10, 10)          // connection.start
	r.send(methodFrame(0, 10, 11, // connection.start-ok
		clientProperties(), shortStr("PLAIN"), longStr("\x00"+user+"\x00"+password), shortStr("en_US")))
}

// openVhost sends connection.open.
func (r *rawConn) openVhost(vhost string) {
	r.t.Helper()
	r.send(methodFrame(0, 10, 40, shortStr(vhost), shortStr(""), octet(0)))
}

// clientProperties is the field table
// {capabilities: {authentication_failure_close: true}}.
func clientProperties() []byte {
	inner := append(shortStr("authentication_failure_close"), 't', 1)
	outer := append(shortStr("capabilities"), 'F')
	outer = append(outer, long(uint32(len(inner)))...)
	outer = append(outer, inner...)
	return append(long(uint32(len(outer))), outer...)
}

// openChannel sends channel.open and waits for open-ok.
func (r *rawConn) openChannel(ch uint16) {
	r.t.Helper()
	r.send(methodFrame(ch, 20, 10, shortStr("")))
	r.readMethod(20, 11)
}

// expectConnectionClose reads frames until connection.close, answers
// close-ok, and returns its reply code and text.
func (r *rawConn) expectConnectionClose() (uint16, string) {
	r.t.Helper()
	for {
		f := r.read()
		if f.Type != frameMethod || f.Channel != 0 || !bytes.HasPrefix(f.Payload, []byte{0, 10, 0, 50}) {
			continue
		}
		code := binary.BigEndian.Uint16(f.Payload[4:])
		text := string(f.Payload[7 : 7+int(f.Payload[6])])
		r.send(methodFrame(0, 10, 51)) // close-ok
		return code, text
	}
}

// requireEOF checks that the server closes the socket.
func (r *rawConn) requireEOF() {
	r.t.Helper()
	buf := make([]byte, 64)
	for {
		_, err := r.conn.Read(buf)
		if err != nil {
			var ne net.Error
			require.False(r.t, errors.As(err, &ne) && ne.Timeout(), "server did not close the socket")
			return
		}
	}
}

// readCloseOrEOF reads until a connection.close (returning its code and
// text) or until the server drops the socket (closed is then true).
func (r *rawConn) readCloseOrEOF() (code uint16, text string, closed bool) {
	r.t.Helper()
	for {
		var h [7]byte
		if _, err := io.ReadFull(r.conn, h[:]); err != nil {
			var ne net.Error
			require.False(r.t, errors.As(err, &ne) && ne.Timeout(), "server neither closed nor answered")
			return 0, "", true
		}
		p := make([]byte, binary.BigEndian.Uint32(h[3:])+1)
		if _, err := io.ReadFull(r.conn, p); err != nil {
			return 0, "", true
		}
		if h[0] == frameMethod && bytes.HasPrefix(p, []byte{0, 10, 0, 50}) {
			code = binary.BigEndian.Uint16(p[4:])
			text = string(p[7 : 7+int(p[6])])
			r.send(methodFrame(0, 10, 51))
			return code, text, false
		}
	}
}
