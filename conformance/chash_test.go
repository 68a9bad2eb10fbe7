package conformance

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// writeGoldenEnv makes the placement tests record what the broker does
// (run them against RabbitMQ with it set) instead of comparing.
const writeGoldenEnv = "WARREN_WRITE_GOLDEN"

// chashPlacement binds queues to a new x-consistent-hash exchange with the
// given weights, in order, publishes n messages made by pub, and returns for
// each message index the index of the queue it reached.
func chashPlacement(t *testing.T, b *testBroker, args amqp091.Table, weights []string, n int, pub func(i int) (string, amqp091.Publishing)) []int {
	t.Helper()
	// A channel of its own: amqp091-go blocks on a full confirm listener.
	_, ch := b.channel(t)
	x := declareExchange(t, b, ch, "x-consistent-hash", "chx", args)
	queues := make([]string, len(weights))
	for i, w := range weights {
		queues[i] = declareQueue(t, b, ch, "q"+strconv.Itoa(i), nil)
		require.NoError(t, ch.QueueBind(queues[i], w, x, false, nil))
	}
	require.NoError(t, ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, n))
	for i := range n {
		key, p := pub(i)
		p.Body = []byte(strconv.Itoa(i))
		require.NoError(t, ch.Publish(x, key, false, false, p))
	}
	for range n {
		select {
		case c := <-confirms:
			require.True(t, c.Ack)
		case <-time.After(10 * time.Second):
			t.Fatal("no confirm")
		}
	}
	placement := make([]int, n)
	for i := range placement {
		placement[i] = -1
	}
	for qi, q := range queues {
		for _, body := range drain(t, ch, q) {
			k, err := strconv.Atoi(body)
			require.NoError(t, err)
			require.Equal(t, -1, placement[k], "message %d reached two queues", k)
			placement[k] = qi
		}
	}
	for i, qi := range placement {
		require.NotEqual(t, -1, qi, "message %d reached no queue", i)
	}
	return placement
}

// requireGolden compares a placement with the one RabbitMQ 3.10.8 made
// (testdata/NAME), or records it when writeGoldenEnv is set.
func requireGolden(t *testing.T, b *testBroker, name string, placement []int) {
	t.Helper()
	path := filepath.Join("testdata", name)
	var sb strings.Builder
	for _, q := range placement {
		fmt.Fprintf(&sb, "%d\n", q)
	}
	if os.Getenv(writeGoldenEnv) != "" {
		require.True(t, b.External, "golden files record RabbitMQ's placement: run against it")
		require.NoError(t, os.WriteFile(path, []byte(sb.String()), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), sb.String(), "placement differs from RabbitMQ's (%s)", path)
}

// TestConsistentHashPlacementMatchesRabbitMQ: routing keys land on the
// same queues as with rabbitmq_consistent_hash_exchange 3.10, so a
// migration keeps per-key placement; the weights shape the traffic.
func TestConsistentHashPlacementMatchesRabbitMQ(t *testing.T) {
	b := startBroker(t)
	placement := chashPlacement(t, b, nil, []string{"1", "2", "3"}, 1000, func(i int) (string, amqp091.Publishing) {
		return fmt.Sprintf("order-%d", i), amqp091.Publishing{}
	})
	requireGolden(t, b, "chash_routing_key.txt", placement)
	var counts [3]int
	for _, q := range placement {
		counts[q]++
	}
	// Weights 1:2:3 of 1000 messages: about 167, 333, 500.
	require.InDelta(t, 167, counts[0], 60, "counts %v", counts)
	require.InDelta(t, 333, counts[1], 70, "counts %v", counts)
	require.InDelta(t, 500, counts[2], 70, "counts %v", counts)

	// The same key always reaches the same queue.
	again := chashPlacement(t, b, nil, []string{"1", "2", "3"}, 1000, func(i int) (string, amqp091.Publishing) {
		return fmt.Sprintf("order-%d", i), amqp091.Publishing{}
	})
	require.Equal(t, placement, again)
}

// TestConsistentHashAddingAQueueMovesAFraction: with three equal queues and
// then four, about a quarter of the keys move, all of them to the new one.
func TestConsistentHashAddingAQueueMovesAFraction(t *testing.T) {
	b := startBroker(t)
	key := func(i int) (string, amqp091.Publishing) { return "k" + strconv.Itoa(i), amqp091.Publishing{} }
	three := chashPlacement(t, b, nil, []string{"1", "1", "1"}, 1000, key)
	four := chashPlacement(t, b, nil, []string{"1", "1", "1", "1"}, 1000, key)
	moved := 0
	for i := range three {
		if three[i] != four[i] {
			moved++
			require.Equal(t, 3, four[i], "key %d moved between old queues", i)
		}
	}
	require.InDelta(t, 250, moved, 60)
	requireGolden(t, b, "chash_four_queues.txt", four)
}

// TestConsistentHashHeaderAndProperty: hash-header and hash-property route
// by a header's value or a property, placing them as the plugin does.
func TestConsistentHashHeaderAndProperty(t *testing.T) {
	b := startBroker(t)
	weights := []string{"2", "1", "1"}
	header := chashPlacement(t, b, amqp091.Table{"hash-header": "customer"}, weights, 300, func(i int) (string, amqp091.Publishing) {
		h := amqp091.Table{"customer": fmt.Sprintf("c-%d", i)}
		switch i % 3 {
		case 1:
			h["customer"] = int32(i)
		case 2:
			h = nil // no header: all such messages share one queue
		}
		return "ignored", amqp091.Publishing{Headers: h}
	})
	requireGolden(t, b, "chash_header.txt", header)
	msgID := chashPlacement(t, b, amqp091.Table{"hash-property": "message_id"}, weights, 300, func(i int) (string, amqp091.Publishing) {
		return "ignored", amqp091.Publishing{MessageId: fmt.Sprintf("m-%d", i)}
	})
	requireGolden(t, b, "chash_message_id.txt", msgID)
	corr := chashPlacement(t, b, amqp091.Table{"hash-property": "correlation_id"}, weights, 300, func(i int) (string, amqp091.Publishing) {
		return "ignored", amqp091.Publishing{CorrelationId: fmt.Sprintf("c-%d", i)}
	})
	requireGolden(t, b, "chash_correlation_id.txt", corr)
	ts := chashPlacement(t, b, amqp091.Table{"hash-property": "timestamp"}, weights, 300, func(i int) (string, amqp091.Publishing) {
		return "ignored", amqp091.Publishing{Timestamp: time.Unix(1700000000+int64(i)*7, 0)}
	})
	requireGolden(t, b, "chash_timestamp.txt", ts)
}

// TestConsistentHashErrors: the plugin's errors for bad binding keys and
// arguments.
func TestConsistentHashErrors(t *testing.T) {
	b := startBroker(t)
	for _, tc := range []struct {
		name, key string
		args      amqp091.Table
		text      string
	}{
		{"key not an integer", "abc", nil, `PRECONDITION_FAILED - The binding key must be an integer: <<"abc">>`},
		{"key zero", "0", nil, "PRECONDITION_FAILED - The binding key must be greater than 0"},
		{"key negative", "-3", nil, "PRECONDITION_FAILED - The binding key must be greater than 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ch := b.channel(t)
			x := declareExchange(t, b, ch, "x-consistent-hash", "chx", nil)
			q := declareQueue(t, b, ch, "q", nil)
			closed := notifyClose(ch)
			err := ch.QueueBind(q, tc.key, x, false, nil)
			requireAMQPError(t, err, amqp091.PreconditionFailed, tc.text)
			requireClosedWith(t, closed, amqp091.PreconditionFailed, tc.text)
		})
	}
	for _, tc := range []struct {
		name string
		args amqp091.Table
		text string
	}{
		{"both header and property", amqp091.Table{"hash-header": "h", "hash-property": "message_id"}, "PRECONDITION_FAILED - hash-header and hash-property are mutually exclusive"},
		{"unsupported property", amqp091.Table{"hash-property": "app_id"}, "PRECONDITION_FAILED - Unsupported property: app_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ch := b.channel(t)
			name := uniqueName(t, "chx")
			b.cleanupExchange(t, name)
			closed := notifyClose(ch)
			err := ch.ExchangeDeclare(name, "x-consistent-hash", false, true, false, false, tc.args)
			requireAMQPError(t, err, amqp091.PreconditionFailed, tc.text)
			requireClosedWith(t, closed, amqp091.PreconditionFailed, tc.text)
		})
	}
}

// TestRandomExchange: x-random delivers each message to one bound queue,
// chosen at random whatever the routing key, as rabbitmq_random_exchange.
func TestRandomExchange(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	x := declareExchange(t, b, ch, "x-random", "rx", nil)
	publish(t, ch, x, "any", "unroutable") // no bindings: nowhere
	var queues []string
	for i := range 3 {
		q := declareQueue(t, b, ch, "q"+strconv.Itoa(i), nil)
		require.NoError(t, ch.QueueBind(q, "key-"+strconv.Itoa(i), x, false, nil))
		queues = append(queues, q)
	}
	for i := range 300 {
		publish(t, ch, x, "whatever-"+strconv.Itoa(i), strconv.Itoa(i))
	}
	var all []string
	for _, q := range queues {
		got := drain(t, ch, q)
		require.Greater(t, len(got), 50, "queue %s got %d of 300", q, len(got))
		all = append(all, got...)
	}
	require.Len(t, all, 300)
	slices.Sort(all)
	require.Len(t, slices.Compact(all), 300, "a message reached two queues")
}
