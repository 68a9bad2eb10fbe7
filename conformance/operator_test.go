package conformance

import (
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOperatorPolicies: an operator policy caps the queues it matches (the
// lower of its value and the queue's own or its policy's wins, as in
// RabbitMQ), survives a restart, and travels in the definitions as an
// operator_policy parameter.
func TestOperatorPolicies(t *testing.T) {
	b := newAdminBroker(t)
	b.mustDo(400, "PUT", "/api/operator-policies/%2F/bad", map[string]any{"pattern": ".*", "definition": map[string]any{"overflow": "reject-publish"}})
	b.mustDo(201, "PUT", "/api/operator-policies/%2F/cap", map[string]any{"pattern": "^capped\\.", "apply-to": "queues",
		"definition": map[string]any{"max-length": 3}})
	b.mustDo(204, "PUT", "/api/operator-policies/%2F/cap", map[string]any{"pattern": "^capped\\.", "apply-to": "queues",
		"definition": map[string]any{"max-length": 3}})
	b.mustDo(201, "PUT", "/api/policies/%2F/users", map[string]any{"pattern": "^capped\\.p", "definition": map[string]any{"max-length": 100}})
	b.restart()

	_, ch := b.mustDial("guest", "guest", "/")
	depth := func(name string, args amqp091.Table, publish int) int {
		t.Helper()
		_, err := ch.QueueDeclare(name, false, false, false, false, args)
		require.NoError(t, err)
		for i := 0; i < publish; i++ {
			publishConfirmed(t, ch, "", name, amqp091.Publishing{Body: []byte("m")})
		}
		q, err := ch.QueueDeclarePassive(name, false, false, false, false, args)
		require.NoError(t, err)
		return q.Messages
	}
	require.NoError(t, ch.Confirm(false))
	assert.Equal(t, 3, depth("capped.own", amqp091.Table{"x-max-length": int32(10)}, 6), "the operator's 3 under the queue's 10")
	assert.Equal(t, 2, depth("capped.low", amqp091.Table{"x-max-length": int32(2)}, 6), "the queue's 2 under the operator's 3")
	assert.Equal(t, 3, depth("capped.p", nil, 6), "the operator's 3 under the policy's 100")
	assert.Equal(t, 6, depth("free", nil, 6))

	d := b.srv.Broker.Export(b.srv.Broker.VHosts(), true)
	var found bool
	for _, p := range d.Parameters {
		if m, ok := p.(map[string]any); ok && m["component"] == "operator_policy" && m["name"] == "cap" {
			found = true
		}
	}
	assert.True(t, found, "the operator policy is exported")

	b.mustDo(204, "DELETE", "/api/operator-policies/%2F/cap", nil)
	b.mustDo(404, "DELETE", "/api/operator-policies/%2F/cap", nil)
	for i := 0; i < 3; i++ {
		publishConfirmed(t, ch, "", "capped.own", amqp091.Publishing{Body: []byte("m")})
	}
	q, err := ch.QueueDeclarePassive("capped.own", false, false, false, false, amqp091.Table{"x-max-length": int32(10)})
	require.NoError(t, err)
	assert.Equal(t, 6, q.Messages, "without the operator policy the queue's own 10 applies")

	b.mustDo(204, "POST", "/api/definitions", map[string]any{"parameters": []any{map[string]any{
		"vhost": "/", "component": "operator_policy", "name": "cap",
		"value": map[string]any{"pattern": "^capped\\.", "apply-to": "queues", "priority": 0, "definition": map[string]any{"max-length": 3}}}}})
	q, err = ch.QueueDeclarePassive("capped.own", false, false, false, false, amqp091.Table{"x-max-length": int32(10)})
	require.NoError(t, err)
	assert.Equal(t, 3, q.Messages, "the imported operator policy applies at once")
}
