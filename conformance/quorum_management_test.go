package conformance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// TestQuorumManagement: quorum queues through the management API as
// RabbitMQ 3.10.8 shows them: the declare rules over HTTP, `type: quorum`
// with leader, members and online (this one node), the counters, and the
// definitions export and import with x-queue-type.
func TestQuorumManagement(t *testing.T) {
	l := newLimitsTarget(t)
	vh := fmt.Sprintf("quorum-mgmt-%d", time.Now().UnixNano())
	vp := url.PathEscape(vh)
	l.must(http.StatusCreated, "PUT", "/api/vhosts/"+vp, nil)
	t.Cleanup(func() { l.call("DELETE", "/api/vhosts/"+vp, nil) })
	// RabbitMQ grants the vhost's creator permissions already (204 here).
	status, text := l.call("PUT", "/api/permissions/"+vp+"/guest", map[string]any{"configure": ".*", "write": ".*", "read": ".*"})
	require.Contains(t, []int{http.StatusCreated, http.StatusNoContent}, status, text)
	vhURL := "amqp://guest:guest@" + l.addr + "/" + vp
	if reason := quorumSupport(t, vhURL); reason != "" {
		t.Skip(reason)
	}
	var overview struct{ Node string }
	require.NoError(t, json.Unmarshal([]byte(l.must(http.StatusOK, "GET", "/api/overview", nil)), &overview))
	require.NotEmpty(t, overview.Node)

	t.Run("declare rules", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			body   map[string]any
			reason string
		}{
			{"non-durable", map[string]any{"durable": false, "arguments": map[string]any{"x-queue-type": "quorum"}},
				"invalid property 'non-durable' for queue 'q' in vhost '%s'"},
			{"auto-delete", map[string]any{"durable": true, "auto_delete": true, "arguments": map[string]any{"x-queue-type": "quorum"}},
				"invalid property 'auto-delete' for queue 'q' in vhost '%s'"},
			{"refused argument", map[string]any{"durable": true, "arguments": map[string]any{"x-queue-type": "quorum", "x-max-priority": 5}},
				"invalid arg 'x-max-priority' for queue 'q' in vhost '%s' of queue type rabbit_quorum_queue"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var e struct{ Error, Reason string }
				require.NoError(t, json.Unmarshal([]byte(l.must(http.StatusBadRequest, "PUT", "/api/queues/"+vp+"/q", tc.body)), &e))
				require.Equal(t, "bad_request", e.Error)
				require.Equal(t, fmt.Sprintf(tc.reason, vh), e.Reason)
			})
		}
	})

	args := map[string]any{"x-queue-type": "quorum", "x-delivery-limit": 3}
	l.must(http.StatusCreated, "PUT", "/api/queues/"+vp+"/made-over-http", map[string]any{"durable": true, "arguments": args})
	conn, err := amqp091.DialConfig(vhURL, amqp091.Config{Dial: amqp091.DefaultDial(timeout)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	require.NoError(t, err)
	require.NoError(t, ch.Confirm(false))
	publishEachConfirmed(t, ch, "made-over-http", "a", "b")
	getOne(t, ch, "made-over-http") // one unacked

	t.Run("queue fields", func(t *testing.T) {
		type queueInfo struct {
			Name                   string         `json:"name"`
			Type                   string         `json:"type"`
			Durable                bool           `json:"durable"`
			AutoDelete             bool           `json:"auto_delete"`
			Exclusive              bool           `json:"exclusive"`
			Arguments              map[string]any `json:"arguments"`
			Leader                 string         `json:"leader"`
			Members                []string       `json:"members"`
			Online                 []string       `json:"online"`
			Node                   string         `json:"node"`
			State                  string         `json:"state"`
			Messages               *int           `json:"messages"`
			MessagesReady          *int           `json:"messages_ready"`
			MessagesUnacknowledged *int           `json:"messages_unacknowledged"`
		}
		var q queueInfo
		// RabbitMQ refreshes a quorum queue's counters every few seconds, and
		// node and state (from its stats) not always at the same time.
		require.Eventually(t, func() bool {
			q = queueInfo{}
			require.NoError(t, json.Unmarshal([]byte(l.must(http.StatusOK, "GET", "/api/queues/"+vp+"/made-over-http", nil)), &q))
			return q.Messages != nil && *q.Messages == 2 && q.MessagesUnacknowledged != nil && *q.MessagesUnacknowledged == 1 &&
				q.Node != "" && q.State != ""
		}, 15*time.Second, 250*time.Millisecond, "counters of %+v", q)
		require.Equal(t, "quorum", q.Type)
		require.True(t, q.Durable)
		require.False(t, q.AutoDelete)
		require.False(t, q.Exclusive)
		require.Equal(t, map[string]any{"x-queue-type": "quorum", "x-delivery-limit": float64(3)}, q.Arguments)
		require.Equal(t, overview.Node, q.Leader)
		require.Equal(t, []string{overview.Node}, q.Members)
		require.Equal(t, []string{overview.Node}, q.Online)
		require.Equal(t, overview.Node, q.Node)
		require.Equal(t, "running", q.State)
		require.Equal(t, 1, *q.MessagesReady)

		// The listing says the same.
		var all []queueInfo
		require.NoError(t, json.Unmarshal([]byte(l.must(http.StatusOK, "GET", "/api/queues/"+vp, nil)), &all))
		require.Len(t, all, 1)
		require.Equal(t, "quorum", all[0].Type)
		require.Equal(t, []string{overview.Node}, all[0].Members)
	})

	t.Run("definitions", func(t *testing.T) {
		var defs struct {
			Queues []struct {
				Name       string         `json:"name"`
				Durable    bool           `json:"durable"`
				AutoDelete bool           `json:"auto_delete"`
				Arguments  map[string]any `json:"arguments"`
			} `json:"queues"`
		}
		require.NoError(t, json.Unmarshal([]byte(l.must(http.StatusOK, "GET", "/api/definitions/"+vp, nil)), &defs))
		require.Len(t, defs.Queues, 1)
		require.Equal(t, "made-over-http", defs.Queues[0].Name)
		require.True(t, defs.Queues[0].Durable)
		require.Equal(t, map[string]any{"x-queue-type": "quorum", "x-delivery-limit": float64(3)}, defs.Queues[0].Arguments)

		// Importing a quorum queue makes a quorum queue.
		status, text := l.call("POST", "/api/definitions/"+vp, map[string]any{"queues": []any{
			map[string]any{"name": "imported", "durable": true, "auto_delete": false, "arguments": map[string]any{"x-queue-type": "quorum"}},
		}})
		require.Contains(t, []int{http.StatusCreated, http.StatusNoContent}, status, text)
		var q struct{ Type string }
		require.NoError(t, json.Unmarshal([]byte(l.must(http.StatusOK, "GET", "/api/queues/"+vp+"/imported", nil)), &q))
		require.Equal(t, "quorum", q.Type)
		ch, err := conn.Channel()
		require.NoError(t, err)
		_, err = ch.QueueDeclare("imported", true, false, false, false, amqp091.Table{"x-queue-type": "classic"})
		requireExactReason(t, err, fmt.Sprintf("PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'imported' in vhost '%s': received 'classic' but current is 'quorum'", vh))
	})
}
