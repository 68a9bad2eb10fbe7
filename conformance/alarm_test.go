package conformance

import (
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// TestMemoryAlarmBlocksPublishers: past the memory high watermark a
// publishing connection gets connection.blocked and is not read until the
// alarm clears, while a consumer on another connection keeps draining; then
// connection.unblocked and the held publishes go through.
func TestMemoryAlarmBlocksPublishers(t *testing.T) {
	testResourceAlarm(t, "low on memory", func(b *testBroker, on bool) {
		if on {
			b.srv.Broker().SetMemoryHighWatermark(1) // any process is above one byte
		} else {
			b.srv.Broker().SetMemoryHighWatermark(0)
		}
	})
}

// TestDiskAlarmBlocksPublishers is the same with the disk free limit.
func TestDiskAlarmBlocksPublishers(t *testing.T) {
	testResourceAlarm(t, "low on disk space", func(b *testBroker, on bool) {
		if on {
			b.srv.Broker().SetDiskFreeLimit(1 << 62) // more than any disk has free
		} else {
			b.srv.Broker().SetDiskFreeLimit(0)
		}
	})
}

func testResourceAlarm(t *testing.T, reason string, alarm func(b *testBroker, on bool)) {
	b := startBroker(t)
	b.skipIfExternal(t)
	pconn, pub := b.channel(t)
	_, cons := b.channel(t)
	q := declareQueue(t, b, cons, "q", nil)
	blocked := pconn.NotifyBlocked(make(chan amqp091.Blocking, 4))
	deliveries, err := cons.Consume(q, "", true, false, false, false, nil)
	require.NoError(t, err)

	publish(t, pub, "", q, "before")
	require.Equal(t, "before", string(recv(t, deliveries).Body))

	alarm(b, true)
	// The publisher is told at its next publish, which is then held.
	publish(t, pub, "", q, "held")
	select {
	case bl := <-blocked:
		require.True(t, bl.Active)
		require.Equal(t, reason, bl.Reason)
	case <-time.After(timeout):
		t.Fatal("no connection.blocked")
	}
	requireNoDelivery(t, deliveries)

	// A connection that only consumes is not held: it can still declare.
	_, err = cons.QueueDeclarePassive(q, false, false, false, false, nil)
	require.NoError(t, err)

	alarm(b, false)
	select {
	case bl := <-blocked:
		require.False(t, bl.Active)
	case <-time.After(timeout):
		t.Fatal("no connection.unblocked")
	}
	require.Equal(t, "held", string(recv(t, deliveries).Body))
}
