package conformance

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClusterNameAndGlobalParameters: PUT /api/cluster-name and global
// parameters are stored, survive a restart, travel in the definitions, and
// the cluster name is what connection.start's cluster_name says.
func TestClusterNameAndGlobalParameters(t *testing.T) {
	b := newAdminBroker(t)
	b.mustDo(204, "PUT", "/api/cluster-name", map[string]any{"name": "blue"})
	b.mustDo(400, "PUT", "/api/cluster-name", map[string]any{"nom": "x"})
	b.mustDo(201, "PUT", "/api/global-parameters/endpoints", map[string]any{"value": map[string]any{"a": 1}})
	b.mustDo(204, "PUT", "/api/global-parameters/endpoints", map[string]any{"value": map[string]any{"a": 2}})
	b.mustDo(400, "PUT", "/api/global-parameters/endpoints", map[string]any{"valeur": 1})
	b.mustDo(404, "DELETE", "/api/global-parameters/nothing", nil)
	b.restart()
	conn, _ := b.mustDial("guest", "guest", "/")
	assert.Equal(t, "blue", conn.Properties["cluster_name"])
	d := b.srv.Broker.Export(b.srv.Broker.VHosts(), true)
	raw, err := json.Marshal(d.GlobalParameters)
	require.NoError(t, err)
	assert.JSONEq(t, `[{"name":"cluster_name","value":"blue"},{"name":"endpoints","value":{"a":2}}]`, string(raw))
	b.mustDo(204, "DELETE", "/api/global-parameters/endpoints", nil)
	b.mustDo(404, "DELETE", "/api/global-parameters/endpoints", nil)

	// An import brings them back, as RabbitMQ's does.
	b.mustDo(204, "POST", "/api/definitions", map[string]any{"global_parameters": []any{
		map[string]any{"name": "cluster_name", "value": "green"}, map[string]any{"name": "endpoints", "value": []any{1, 2}}}})
	assert.Equal(t, "green", b.srv.Broker.ClusterName())
	v, ok := b.srv.Broker.GlobalParameter("endpoints")
	require.True(t, ok)
	assert.JSONEq(t, `[1,2]`, string(v))
}
