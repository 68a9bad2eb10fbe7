package main

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp/amqptest"
	"github.com/warrenmq/warren/amqp/wire"
)

// startWarren starts an in-process Warren for the test and returns its URI.
func startWarren(t *testing.T) string { return amqptest.NewServer(t).URL }

// TestRawPublishConfirmConsume publishes n messages with confirms on one
// connection, consumes them with manual multiple acks on another, and checks
// that every one was confirmed and delivered once, in order.
func TestRawPublishConfirmConsume(t *testing.T) {
	uri := startWarren(t)
	const n, window = 5000, 64

	admin, err := dialRaw(uri, "test admin", 5*time.Second)
	require.NoError(t, err)
	ach, err := rawAdmin{admin}.channel()
	require.NoError(t, err)
	require.NoError(t, ach.queueDeclare("raw-test", false, true, nil))
	require.NoError(t, ach.queuePurge("raw-test"))

	pub, err := dialRaw(uri, "test producer", 5*time.Second)
	require.NoError(t, err)
	pch, err := pub.openChannel()
	require.NoError(t, err)
	_, err = pub.rpc(pch, &wire.ConfirmSelect{}, 85, 11)
	require.NoError(t, err)
	props := (&wire.Properties{DeliveryMode: 2}).Append(nil)
	bp := &wire.BasicPublish{RoutingKey: "raw-test"}
	body := make([]byte, 100)
	tracker := newConfirmTracker(window)
	var buf []byte
	confirmed, outstanding := int64(0), 0
	for i := range n {
		for outstanding >= window {
			require.NoError(t, pub.flush())
			m, err := pub.await(pch, 60, 80) // basic.ack
			require.NoError(t, err)
			ack := m.(*wire.BasicAck)
			c := tracker.settle(ack.DeliveryTag, ack.Multiple)
			confirmed += c
			outstanding -= int(c)
		}
		binary.BigEndian.PutUint64(body, uint64(i))
		buf = pub.appendPublish(buf[:0], pch, bp, props, body)
		require.NoError(t, pub.write(buf))
		outstanding++
	}
	require.NoError(t, pub.flush())
	for outstanding > 0 {
		m, err := pub.await(pch, 60, 80)
		require.NoError(t, err)
		ack := m.(*wire.BasicAck)
		c := tracker.settle(ack.DeliveryTag, ack.Multiple)
		confirmed += c
		outstanding -= int(c)
	}
	assert.EqualValues(t, n, confirmed)
	require.NoError(t, pub.close())

	cons, err := dialRaw(uri, "test consumer", 5*time.Second)
	require.NoError(t, err)
	cons.flushOnRead = true
	cch, err := cons.openChannel()
	require.NoError(t, err)
	_, err = cons.rpc(cch, &wire.BasicQos{PrefetchCount: 100}, 60, 11)
	require.NoError(t, err)
	_, err = cons.rpc(cch, &wire.BasicConsume{Queue: "raw-test"}, 60, 21)
	require.NoError(t, err)
	require.NoError(t, cons.nc.SetReadDeadline(time.Now().Add(10*time.Second)))
	got := 0
	var tag uint64
	for got < n {
		f, err := cons.fr.ReadFrame()
		require.NoError(t, err)
		switch f.Type {
		case wire.FrameMethod:
			var ok bool
			tag, ok = parseDeliver(f.Payload)
			require.True(t, ok, "unexpected method")
		case wire.FrameBody:
			require.Len(t, f.Payload, len(body))
			require.EqualValues(t, got, binary.BigEndian.Uint64(f.Payload))
			got++
			if got%10 == 0 {
				require.NoError(t, cons.sendAck(cch, tag, true))
			}
		}
	}
	assert.Equal(t, n, got)
	require.NoError(t, cons.nc.SetReadDeadline(time.Time{}))
	require.NoError(t, cons.close())
	require.NoError(t, admin.close()) // the auto-delete queue went with its consumer
}

// TestRawChannelCloseReported checks that a broker's channel.close comes
// back as an error instead of a hang.
func TestRawChannelCloseReported(t *testing.T) {
	uri := startWarren(t)
	c, err := dialRaw(uri, "test", 5*time.Second)
	require.NoError(t, err)
	defer c.close()
	ch, err := rawAdmin{c}.channel()
	require.NoError(t, err)
	err = ch.queuePurge("no-such-queue")
	var ae *amqpError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, uint16(404), ae.code)
	// The connection still works.
	ch, err = rawAdmin{c}.channel()
	require.NoError(t, err)
	require.NoError(t, ch.close())
}

// TestRawBench runs the whole tool with the raw client against Warren, with
// confirms and manual acks, and checks the counters.
func TestRawBench(t *testing.T) {
	uri := startWarren(t)
	code := run(context.Background(), []string{"-uri", uri, "-time", "1500ms", "-warmup", "500ms",
		"-confirm", "50", "-qos", "100", "-multi-ack", "5", "-progress=false", "-json"}, io.Discard, io.Discard)
	assert.Equal(t, exitOK, code)

	cfg, err := parseFlags([]string{"-uri", uri, "-time", "1500ms", "-warmup", "500ms", "-confirm", "50",
		"-qos", "100", "-exchange-type", "topic", "-bindings", "10", "-progress=false"}, io.Discard)
	require.NoError(t, err)
	b := newBench(cfg, io.Discard)
	require.NoError(t, b.execute(context.Background()))
	r := b.result()
	assert.Positive(t, r.Published)
	assert.Positive(t, r.Consumed)
	assert.Zero(t, r.Nacked)
	assert.InDelta(t, r.Published, r.Confirmed, float64(cfg.confirm))
}

func TestConfirmTracker(t *testing.T) {
	tr := newConfirmTracker(4)
	assert.EqualValues(t, 1, tr.settle(2, false))
	assert.EqualValues(t, 1, tr.settle(3, false))
	assert.EqualValues(t, 3, tr.settle(5, true)) // 1, 4 and 5; 2 and 3 were done
	assert.EqualValues(t, 0, tr.settle(5, false))
	assert.EqualValues(t, 1, tr.settle(6, false))
	assert.EqualValues(t, 1, tr.settle(8, false))
	assert.EqualValues(t, 1, tr.settle(7, false)) // and 8 was done: low moves past it
	assert.EqualValues(t, 9, tr.low)
}

// TestPublishEncodeAllocs: encoding and buffering a publish allocates nothing.
func TestPublishEncodeAllocs(t *testing.T) {
	c := newRawConn(discardConn{})
	c.frameMax = 131072
	bp := &wire.BasicPublish{Exchange: "warren-perf-topic", RoutingKey: "perf.warren-perf-0.data"}
	props := (&wire.Properties{DeliveryMode: 2, Priority: 3}).Append(nil)
	body := make([]byte, 16)
	buf := make([]byte, 0, 512)
	allocs := testing.AllocsPerRun(10000, func() {
		binary.LittleEndian.PutUint64(body, uint64(time.Now().UnixNano()))
		buf = c.appendPublish(buf[:0], 1, bp, props, body)
		if err := c.write(buf); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
	ackAllocs := testing.AllocsPerRun(10000, func() { _ = c.sendAck(1, 42, true) })
	assert.Zero(t, ackAllocs)
	d := wire.AppendMethodFrame(nil, 1, &wire.BasicDeliver{ConsumerTag: "amq.ctag-x", DeliveryTag: 7, Exchange: "", RoutingKey: "q"})
	tag, ok := parseDeliver(d[7 : len(d)-1])
	assert.True(t, ok)
	assert.EqualValues(t, 7, tag)
}

func BenchmarkPublishEncode(b *testing.B) {
	c := newRawConn(discardConn{})
	c.frameMax = 131072
	bp := &wire.BasicPublish{RoutingKey: "warren-perf-0"}
	props := (&wire.Properties{}).Append(nil)
	body := make([]byte, 16)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = c.appendPublish(buf[:0], 1, bp, props, body)
		if err := c.write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// discardConn is a net.Conn that swallows writes.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error) { return len(p), nil }
