package conformance

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// TestQuorumPolicies: which policy keys shape a quorum queue, set through
// the management API on a vhost of the test's own (RabbitMQ 3.10.8: a policy
// that holds any key quorum queues do not support, such as ha-mode or
// queue-mode, does not apply to them at all; where a queue argument and a
// policy both set a limit, the lower wins).
func TestQuorumPolicies(t *testing.T) {
	l := newLimitsTarget(t)
	vh := fmt.Sprintf("quorum-policies-%d", time.Now().UnixNano())
	pv := "/api/vhosts/" + url.PathEscape(vh)
	l.must(http.StatusCreated, "PUT", pv, nil)
	t.Cleanup(func() { l.call("DELETE", pv, nil) })
	// RabbitMQ grants the vhost's creator permissions already (204 here).
	status, text := l.call("PUT", "/api/permissions/"+url.PathEscape(vh)+"/guest",
		map[string]any{"configure": ".*", "write": ".*", "read": ".*"})
	require.Contains(t, []int{http.StatusCreated, http.StatusNoContent}, status, text)
	vhURL := "amqp://guest:guest@" + l.addr + "/" + url.PathEscape(vh)
	if reason := quorumSupport(t, vhURL); reason != "" {
		t.Skip(reason)
	}
	channel := func(t *testing.T) *amqp091.Channel {
		conn, err := amqp091.DialConfig(vhURL, amqp091.Config{Dial: amqp091.DefaultDial(timeout)})
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		ch, err := conn.Channel()
		require.NoError(t, err)
		require.NoError(t, ch.Confirm(false))
		return ch
	}
	// policy sets a policy matching the queue named after the test only.
	policy := func(t *testing.T, queue string, def map[string]any) {
		name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
		path := "/api/policies/" + url.PathEscape(vh) + "/" + url.PathEscape(name)
		l.must(http.StatusCreated, "PUT", path, map[string]any{"pattern": "^" + queue + "$", "apply-to": "queues", "definition": def})
		t.Cleanup(func() { l.call("DELETE", path, nil) })
	}
	// declare sets the policy first, so that it applies from the start.
	declare := func(t *testing.T, ch *amqp091.Channel, def map[string]any, args amqp091.Table) string {
		q := fmt.Sprintf("q%d", time.Now().UnixNano())
		policy(t, q, def)
		_, err := ch.QueueDeclare(q, true, false, false, false, quorumArgs(args))
		require.NoError(t, err)
		return q
	}
	publishN := func(t *testing.T, ch *amqp091.Channel, q string, n int) []bool {
		var acked []bool
		for i := range n {
			acked = append(acked, confirmOf(t, ch, q, fmt.Sprint(i)))
		}
		return acked
	}

	t.Run("length limits", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			def   map[string]any
			args  amqp091.Table
			n     int
			acked []bool
			left  int
		}{
			{"max-length", map[string]any{"max-length": 1}, nil, 3, []bool{true, true, true}, 1},
			{"max-length-bytes", map[string]any{"max-length-bytes": 4}, nil, 6, []bool{true, true, true, true, true, true}, 4},
			{"reject-publish", map[string]any{"max-length": 1, "overflow": "reject-publish"}, nil, 3, []bool{true, true, false}, 2},
			{"argument lower than the policy", map[string]any{"max-length": 2}, amqp091.Table{"x-max-length": int32(1)}, 3, []bool{true, true, true}, 1},
			{"policy lower than the argument", map[string]any{"max-length": 2}, amqp091.Table{"x-max-length": int32(5)}, 6, []bool{true, true, true, true, true, true}, 2},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ch := channel(t)
				q := declare(t, ch, tc.def, tc.args)
				require.Equal(t, tc.acked, publishN(t, ch, q, tc.n))
				requireQueueLen(t, ch, q, tc.left)
			})
		}
	})

	// A max-length policy with one more key: applied (the queue keeps one
	// message of three) or not applied at all (it keeps three).
	t.Run("keys that keep a policy off quorum queues", func(t *testing.T) {
		for _, tc := range []struct {
			key     string
			val     any
			applies bool
		}{
			{"dead-letter-strategy", "at-least-once", true},
			{"max-in-memory-length", 10, true},
			{"max-in-memory-bytes", 1000, true},
			{"queue-leader-locator", "balanced", true},
			{"overflow", "drop-head", true},
			{"expires", 100000, true},
			{"message-ttl", 100000, true},
			{"delivery-limit", 5, true},
			{"dead-letter-exchange", "dlx", true},
			{"alternate-exchange", "ae", true},
			{"queue-version", 2, true},
			{"ha-mode", "all", false},
			{"queue-master-locator", "min-masters", false},
			{"queue-mode", "lazy", false},
			{"max-age", "1D", false},
			{"stream-max-segment-size-bytes", 1000, false},
		} {
			t.Run(tc.key, func(t *testing.T) {
				ch := channel(t)
				q := declare(t, ch, map[string]any{"max-length": 1, tc.key: tc.val}, nil)
				publishN(t, ch, q, 3)
				want := 3
				if tc.applies {
					want = 1
				}
				requireQueueLen(t, ch, q, want)
			})
		}
	})

	t.Run("message-ttl", func(t *testing.T) {
		ch := channel(t)
		q := declare(t, ch, map[string]any{"message-ttl": 100}, nil)
		publishN(t, ch, q, 2)
		requireQueueLen(t, ch, q, 0)
	})

	t.Run("delivery-limit and dead-letter keys", func(t *testing.T) {
		ch := channel(t)
		dlq := fmt.Sprintf("dlq%d", time.Now().UnixNano())
		_, err := ch.QueueDeclare(dlq, true, false, false, false, nil)
		require.NoError(t, err)
		q := declare(t, ch, map[string]any{"delivery-limit": 1, "dead-letter-exchange": "", "dead-letter-routing-key": dlq}, nil)
		publishN(t, ch, q, 1)
		for want := range int64(2) {
			m := getEventually(t, ch, q, false)
			requireDeliveryCount(t, m, want)
			require.NoError(t, m.Nack(false, true))
		}
		m := getEventually(t, ch, dlq, true)
		requireDeath(t, death{Count: 1, Reason: "delivery_limit", Queue: q, Exchange: "", RoutingKeys: []string{q}}, xDeath(t, m)[0])
	})

	t.Run("delivery-limit argument lower than the policy", func(t *testing.T) {
		ch := channel(t)
		q := declare(t, ch, map[string]any{"delivery-limit": 3}, amqp091.Table{"x-delivery-limit": int32(0)})
		publishN(t, ch, q, 1)
		require.NoError(t, getEventually(t, ch, q, false).Nack(false, true))
		requireQueueLenStays(t, ch, q, 0, 300*time.Millisecond)
		requireEmpty(t, ch, q)
	})

	// RabbitMQ checks quorum queue expiry on its periodic tick (every 5 s),
	// so the queue goes some seconds after the expiry.
	t.Run("expires", func(t *testing.T) {
		ch := channel(t)
		q := declare(t, ch, map[string]any{"expires": 200}, nil)
		conn, err := amqp091.DialConfig(vhURL, amqp091.Config{Dial: amqp091.DefaultDial(timeout)})
		require.NoError(t, err)
		defer conn.Close()
		require.Eventually(t, func() bool {
			pch, err := conn.Channel()
			require.NoError(t, err)
			_, err = pch.QueueDeclarePassive(q, true, false, false, false, nil)
			if err == nil {
				_ = pch.Close()
				return false
			}
			requireAMQPError(t, err, amqp091.NotFound, "")
			return true
		}, 15*time.Second, time.Second, "queue %s not expired", q)
	})
}
