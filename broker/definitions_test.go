package broker_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp/amqptest"
)

// TestImportFile: a definitions file (definitions.import_file) brings exchanges,
// queues, bindings and policies in before the broker serves, and a broken
// file is a configuration error.
func TestImportFile(t *testing.T) {
	srv := amqptest.NewServer(t)
	file := writeFile(t, `{
  "policies": [{"vhost": "/", "name": "cap", "pattern": "^orders$", "apply-to": "queues", "priority": 0,
                "definition": {"max-length": 5}}],
  "exchanges": [{"name": "orders.x", "vhost": "/", "type": "fanout", "durable": true, "auto_delete": false, "internal": false, "arguments": {}}],
  "queues": [{"name": "orders", "vhost": "/", "durable": true, "auto_delete": false, "arguments": {"x-max-priority": 5}}],
  "bindings": [{"source": "orders.x", "vhost": "/", "destination": "orders", "destination_type": "queue", "routing_key": "", "arguments": {}}]
}`)
	require.NoError(t, srv.ImportFile(file))
	v := srv.VHost("/")
	q, err := v.Queue("orders", 0)
	require.NoError(t, err)
	assert.Equal(t, int64(5), q.Config().MaxLength, "the policy applies")
	assert.Equal(t, uint8(5), q.Config().MaxPriority, "the argument too")
	x, err := v.Exchange("orders.x")
	require.NoError(t, err)
	assert.Equal(t, 1, x.BindingCount())

	require.Error(t, srv.ImportFile(writeFile(t, `{"queues": [`)))
	require.Error(t, srv.ImportFile(filepath.Join(t.TempDir(), "missing.json")))
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "definitions.json")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}
