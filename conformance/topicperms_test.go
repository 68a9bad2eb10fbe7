package conformance

import (
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/broker"
)

// TestTopicPermissionsStored: topic permissions survive a restart, are in
// the definitions, come back with an import, and go with their user and
// with their vhost, on disk too.
func TestTopicPermissionsStored(t *testing.T) {
	b := newAdminBroker(t)
	b.addTenant("tp", "tpu", "pw", ".*")
	b.mustDo(201, "PUT", "/api/exchanges/tp/events", map[string]any{"type": "topic"})
	b.mustDo(201, "PUT", "/api/topic-permissions/tp/tpu", map[string]any{"exchange": "events", "write": "^{vhost}\\.", "read": ".*"})
	b.mustDo(400, "PUT", "/api/topic-permissions/tp/tpu", map[string]any{"exchange": "events", "write": "(", "read": ".*"})
	b.mustDo(400, "PUT", "/api/topic-permissions/tp/nobody", map[string]any{"exchange": "events", "write": "", "read": ""})
	b.restart()
	want := []broker.TopicPermission{{User: "tpu", Vhost: "tp", Exchange: "events", Write: "^{vhost}\\.", Read: ".*"}}
	require.Equal(t, want, b.srv.Broker.TopicPermissions("", ""))

	_, ch := b.mustDial("tpu", "pw", "tp")
	require.NoError(t, ch.Publish("events", "tp.ok", false, false, amqp091.Publishing{}))
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	require.NoError(t, ch.Publish("events", "other", false, false, amqp091.Publishing{}))
	e := <-closed
	require.NotNil(t, e)
	assert.Equal(t, "ACCESS_REFUSED - access to topic 'other' in exchange 'events' in vhost 'tp' refused for user 'tpu'", e.Reason)

	d := b.srv.Broker.Export(b.srv.Broker.VHosts(), true)
	require.Len(t, d.TopicPermissions, 1)
	b.mustDo(204, "DELETE", "/api/topic-permissions/tp/tpu", nil)
	b.mustDo(404, "DELETE", "/api/topic-permissions/tp/tpu", nil)
	b.mustDo(204, "POST", "/api/definitions", map[string]any{"topic_permissions": []any{
		map[string]any{"user": "tpu", "vhost": "tp", "exchange": "events", "write": "^{vhost}\\.", "read": ".*"}}})
	require.Equal(t, want, b.srv.Broker.TopicPermissions("", ""))

	// Deleting the vhost deletes them; a vhost made again has none.
	b.mustDo(204, "DELETE", "/api/vhosts/tp", nil)
	b.mustDo(201, "PUT", "/api/vhosts/tp", nil)
	require.Empty(t, b.srv.Broker.TopicPermissions("", ""))
	b.mustDo(201, "PUT", "/api/permissions/tp/tpu", map[string]any{"configure": ".*", "write": ".*", "read": ".*"})
	b.mustDo(201, "PUT", "/api/topic-permissions/tp/tpu", map[string]any{"exchange": "events", "write": "x", "read": "x"})
	b.mustDo(204, "DELETE", "/api/users/tpu", nil)
	b.restart()
	require.Empty(t, b.srv.Broker.TopicPermissions("", ""))
}
