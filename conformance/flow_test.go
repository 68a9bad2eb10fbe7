package conformance

import (
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp"
)

// TestPublisherHeldWhileDiskLags: a queue paged out to disk writes every
// message, so while the disk does not keep up the broker stops reading the
// publisher (flow control), instead of queueing its writes in memory without
// bound; once the disk catches up, everything arrives.
func TestPublisherHeldWhileDiskLags(t *testing.T) {
	var stall atomic.Bool
	b := startBroker(t, func(c *amqp.Config) {
		c.QueueMemoryBudget = 64 << 10 // page out almost at once
		c.StorageFault = func() error {
			for stall.Load() { // a disk that has stopped
				time.Sleep(5 * time.Millisecond)
			}
			return nil
		}
	})
	b.skipIfExternal(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "lagging", nil)

	const n = 100000 // two writes each once paged: far above what may wait
	_, pub := b.channel(t)
	stall.Store(true) // the disk stops
	// A failure below must not leave the disk stopped: closing the
	// connections at cleanup would wait for it until the suite times out.
	t.Cleanup(func() { stall.Store(false) })
	published := make(chan error, 1)
	go func() {
		for i := range n {
			if err := pub.Publish("", q, false, false, amqp091.Publishing{Body: []byte{byte(i)}}); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()

	// While the disk is stopped the queue grows to the limit and stays there.
	length := func() int {
		info, err := ch.QueueDeclarePassive(q, false, false, false, false, nil)
		require.NoError(t, err)
		return info.Messages
	}
	var held int
	require.Eventually(t, func() bool {
		before := length()
		time.Sleep(300 * time.Millisecond)
		held = length()
		return held == before && held > 0
	}, 60*time.Second, 10*time.Millisecond, "the queue should stop growing")
	assert.Less(t, held, n, "the publisher is held back")
	select {
	case err := <-published:
		t.Fatalf("all %d publishes went through while the disk was stopped (err %v)", n, err)
	default:
	}

	stall.Store(false)
	select {
	case err := <-published:
		require.NoError(t, err)
	case <-time.After(60 * time.Second):
		t.Fatal("the publisher is still held after the disk caught up")
	}
	// The last publishes may still be in the socket buffers and the broker's
	// reader: under the race detector on a busy machine that is tens of
	// thousands of messages, more than requireQueueLen's timeout takes.
	require.Eventually(t, func() bool { return length() == n }, 60*time.Second, 20*time.Millisecond,
		"queue %s should hold %d messages", q, n)
}
