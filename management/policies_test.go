package management_test

import (
	"net/http"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPolicies sets RabbitMQ policies through the API and checks their
// effect over AMQP: a policy's keys apply to matching queues, new and
// existing; a queue's own arguments win; deleting the policy removes the
// effect; exchanges take an alternate exchange from a policy.
func TestPolicies(t *testing.T) {
	e := start(t)
	_, ch := e.channel()

	// Dead-lettering and TTL from a policy, on a queue declared without arguments.
	_, err := ch.QueueDeclare("pol.dlq", false, false, false, false, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, e.do("PUT", "/api/policies/%2F/dlx", map[string]any{
		"pattern": `^pol\.work`, "apply-to": "queues", "priority": 1,
		"definition": map[string]any{"dead-letter-exchange": "", "dead-letter-routing-key": "pol.dlq", "message-ttl": 50},
	}, nil))
	_, err = ch.QueueDeclare("pol.work", false, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.Publish("", "pol.work", false, false, amqp091.Publishing{Body: []byte("m")}))
	require.Eventually(t, func() bool {
		q, err := ch.QueueDeclarePassive("pol.dlq", false, false, false, false, nil)
		return err == nil && q.Messages == 1
	}, 5*time.Second, 10*time.Millisecond, "expired by the policy's TTL into its dead-letter queue")
	m, ok, err := ch.Get("pol.dlq", true)
	require.NoError(t, err)
	require.True(t, ok)
	deaths, _ := m.Headers["x-death"].([]any)
	require.Len(t, deaths, 1)
	assert.Equal(t, "expired", deaths[0].(amqp091.Table)["reason"])

	var q struct {
		Policy string `json:"policy"`
	}
	require.Equal(t, http.StatusOK, e.do("GET", "/api/queues/%2F/pol.work", nil, &q))
	assert.Equal(t, "dlx", q.Policy)

	// The queue's own argument wins over the policy.
	_, err = ch.QueueDeclare("pol.work.own", false, false, false, false, amqp091.Table{"x-message-ttl": int32(60000)})
	require.NoError(t, err)
	require.NoError(t, ch.Publish("", "pol.work.own", false, false, amqp091.Publishing{Body: []byte("m")}))
	time.Sleep(200 * time.Millisecond)
	own, err := ch.QueueDeclarePassive("pol.work.own", false, false, false, false, nil)
	require.NoError(t, err)
	assert.Equal(t, 1, own.Messages)

	// A policy applies to a queue that already exists: a length limit cuts
	// its backlog at once, keeping the newest, as RabbitMQ does.
	_, err = ch.QueueDeclare("late.q", false, false, false, false, nil)
	require.NoError(t, err)
	for _, b := range []string{"1", "2", "3"} {
		require.NoError(t, ch.Publish("", "late.q", false, false, amqp091.Publishing{Body: []byte(b)}))
	}
	require.Eventually(t, func() bool {
		q, err := ch.QueueDeclarePassive("late.q", false, false, false, false, nil)
		return err == nil && q.Messages == 3
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, http.StatusCreated, e.do("PUT", "/api/policies/%2F/cap", map[string]any{
		"pattern": `^late\.`, "definition": map[string]any{"max-length": 1},
	}, nil))
	left, err := ch.QueueDeclarePassive("late.q", false, false, false, false, nil)
	require.NoError(t, err)
	require.Equal(t, 1, left.Messages)
	last, ok, err := ch.Get("late.q", false)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "3", string(last.Body))
	require.NoError(t, last.Nack(false, true))
	var list []map[string]any
	require.Equal(t, http.StatusOK, e.do("GET", "/api/policies/%2F", nil, &list))
	assert.Len(t, list, 2)

	// Deleting it lifts the limit.
	require.Equal(t, http.StatusNoContent, e.do("DELETE", "/api/policies/%2F/cap", nil, nil))
	for _, b := range []string{"4", "5"} {
		require.NoError(t, ch.Publish("", "late.q", false, false, amqp091.Publishing{Body: []byte(b)}))
	}
	require.Eventually(t, func() bool {
		q, err := ch.QueueDeclarePassive("late.q", false, false, false, false, nil)
		return err == nil && q.Messages == 3
	}, 5*time.Second, 10*time.Millisecond)

	// An alternate exchange from a policy that applies to exchanges.
	require.NoError(t, ch.ExchangeDeclare("pol.x", "direct", false, false, false, false, nil))
	require.NoError(t, ch.ExchangeDeclare("pol.ae", "fanout", false, false, false, false, nil))
	_, err = ch.QueueDeclare("pol.aeq", false, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind("pol.aeq", "", "pol.ae", false, nil))
	require.Equal(t, http.StatusCreated, e.do("PUT", "/api/policies/%2F/ae", map[string]any{
		"pattern": `^pol\.x$`, "apply-to": "exchanges", "definition": map[string]any{"alternate-exchange": "pol.ae"},
	}, nil))
	require.NoError(t, ch.Publish("pol.x", "nobody", false, false, amqp091.Publishing{Body: []byte("m")}))
	require.Eventually(t, func() bool {
		q, err := ch.QueueDeclarePassive("pol.aeq", false, false, false, false, nil)
		return err == nil && q.Messages == 1
	}, 5*time.Second, 10*time.Millisecond)

	// Invalid policies are refused.
	for _, body := range []map[string]any{
		{"pattern": ".*", "definition": map[string]any{"no-such-key": 1}},
		{"pattern": "(", "definition": map[string]any{"max-length": 1}},
		{"pattern": ".*", "definition": map[string]any{"max-length": -1}},
		{"pattern": ".*", "apply-to": "nothing", "definition": map[string]any{"max-length": 1}},
	} {
		assert.Equal(t, http.StatusBadRequest, e.do("PUT", "/api/policies/%2F/bad", body, nil), "%v", body)
	}
	assert.Equal(t, http.StatusNotFound, e.do("DELETE", "/api/policies/%2F/nope", nil, nil))
}

// TestPolicyLimitDeadLetters: a length limit set by a policy on a queue that
// has a dead-letter exchange moves the dropped backlog to its DLQ.
func TestPolicyLimitDeadLetters(t *testing.T) {
	e := start(t)
	_, ch := e.channel()
	_, err := ch.QueueDeclare("trim.dlq", false, false, false, false, nil)
	require.NoError(t, err)
	_, err = ch.QueueDeclare("trim.q", false, false, false, false, amqp091.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "trim.dlq"})
	require.NoError(t, err)
	for _, b := range []string{"1", "2", "3"} {
		require.NoError(t, ch.Publish("", "trim.q", false, false, amqp091.Publishing{Body: []byte(b)}))
	}
	require.Eventually(t, func() bool {
		q, err := ch.QueueDeclarePassive("trim.q", false, false, false, false, nil)
		return err == nil && q.Messages == 3
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, http.StatusCreated, e.do("PUT", "/api/policies/%2F/trim", map[string]any{
		"pattern": `^trim\.q$`, "definition": map[string]any{"max-length": 1},
	}, nil))
	require.Eventually(t, func() bool {
		q, err := ch.QueueDeclarePassive("trim.dlq", false, false, false, false, nil)
		return err == nil && q.Messages == 2
	}, 5*time.Second, 10*time.Millisecond)
}
