package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClusterSettings: cluster.* from files, variables and flags, and
// each bad one refused with its key and reason.
func TestClusterSettings(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(secretFile, []byte("from-file\n"), 0o600))
	openFile := filepath.Join(dir, "open")
	require.NoError(t, os.WriteFile(openFile, []byte("x"), 0o644))
	emptyFile := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(emptyFile, nil, 0o600))
	three := "a=10.0.0.1:25672, b=10.0.0.2:25672,c=host-c:25673"

	tests := []struct {
		name string
		args []string
		env  env
		want Cluster // checked when err is ""
		err  string  // the error starts with "config: " + err
	}{
		{name: "three nodes by flags", args: []string{"--cluster.node", "b", "--cluster.peers", three, "--cluster.secret", "s"},
			want: Cluster{Node: "b", Name: "warren", Listen: ":25672", Secret: []byte("s"),
				Peers: []Peer{{"a", "10.0.0.1:25672"}, {"b", "10.0.0.2:25672"}, {"c", "host-c:25673"}}}},
		{name: "by variables, secret from a file", env: env{"WARREN_CLUSTER_NODE": "a", "WARREN_CLUSTER_PEERS": "a=h:1", "WARREN_CLUSTER_SECRET_FILE": secretFile,
			"WARREN_CLUSTER_NAME": "prod", "WARREN_CLUSTER_LISTEN": "127.0.0.1:1"},
			want: Cluster{Node: "a", Name: "prod", Listen: "127.0.0.1:1", Secret: []byte("from-file"), Peers: []Peer{{"a", "h:1"}}}},
		{name: "TLS", args: []string{"--cluster.node", "a", "--cluster.peers", "a=h:1", "--cluster.secret", "s",
			"--cluster.tls.cert_file", "c.pem", "--cluster.tls.key_file", "k.pem", "--cluster.tls.ca_file", "ca.pem"},
			want: Cluster{Node: "a", Name: "warren", Listen: ":25672", Secret: []byte("s"), Peers: []Peer{{"a", "h:1"}},
				CertFile: "c.pem", KeyFile: "k.pem", CAFile: "ca.pem"}},
		{name: "self twice by name", args: []string{"--cluster.node", "a", "--cluster.peers", "a=h:1,a=h:2", "--cluster.secret", "s"},
			err: `cluster.peers: names node "a" twice; set by --cluster.peers`},
		{name: "self twice by address", args: []string{"--cluster.node", "a", "--cluster.peers", "a=h:1,b=h:1", "--cluster.secret", "s"},
			err: `cluster.peers: gives nodes "a" and "b" the same address h:1`},
		{name: "unknown self", args: []string{"--cluster.node", "x", "--cluster.peers", three, "--cluster.secret", "s"},
			err: `cluster.peers: does not name this node "x" (cluster.node)`},
		{name: "no equals", args: []string{"--cluster.peers", "a:1"}, err: `cluster.peers: must be NAME=HOST:PORT separated by commas (got "a:1")`},
		{name: "no host", args: []string{"--cluster.peers", "a=:1"}, err: `cluster.peers: node a: address must be HOST:PORT with a host`},
		{name: "bad port", args: []string{"--cluster.peers", "a=h:x"}, err: `cluster.peers: node a: address must be HOST:PORT`},
		{name: "empty item", args: []string{"--cluster.peers", "a=h:1,,b=h:2"}, err: `cluster.peers: must be NAME=HOST:PORT`},
		{name: "bad node name", args: []string{"--cluster.node", "a b"}, err: `cluster.node: a node name cannot hold`},
		{name: "no secret", args: []string{"--cluster.node", "a", "--cluster.peers", "a=h:1"}, err: `cluster.secret: required with cluster.peers`},
		{name: "both secrets", args: []string{"--cluster.node", "a", "--cluster.peers", "a=h:1", "--cluster.secret", "s", "--cluster.secret_file", secretFile},
			err: `cluster.secret_file: set cluster.secret or cluster.secret_file, not both`},
		{name: "readable secret file", args: []string{"--cluster.node", "a", "--cluster.peers", "a=h:1", "--cluster.secret_file", openFile},
			err: `cluster.secret_file: ` + openFile + ` must be accessible by its owner only`},
		{name: "empty secret file", args: []string{"--cluster.node", "a", "--cluster.peers", "a=h:1", "--cluster.secret_file", emptyFile},
			err: `cluster.secret_file: ` + emptyFile + ` is empty`},
		{name: "missing secret file", args: []string{"--cluster.node", "a", "--cluster.peers", "a=h:1", "--cluster.secret_file", filepath.Join(dir, "nope")},
			err: `cluster.secret_file: stat `},
		{name: "cert without key", args: []string{"--cluster.node", "a", "--cluster.peers", "a=h:1", "--cluster.secret", "s", "--cluster.tls.cert_file", "c"},
			err: `cluster.tls.key_file: cluster.tls.cert_file and cluster.tls.key_file go together`},
		{name: "TLS without CA", args: []string{"--cluster.node", "a", "--cluster.peers", "a=h:1", "--cluster.secret", "s", "--cluster.tls.cert_file", "c", "--cluster.tls.key_file", "k"},
			err: `cluster.tls.ca_file: required with cluster.tls.cert_file`},
		{name: "bad listen", args: []string{"--cluster.listen", "25672"}, err: `cluster.listen: must be host:port`},
		{name: "empty cluster name", args: []string{"--cluster.name", ""}, err: `cluster.name: must be 1 to 255 bytes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(tt.args, tt.env.lookup)
			if tt.err != "" {
				require.Error(t, err)
				assert.True(t, strings.HasPrefix(err.Error(), "config: "+tt.err), "got  %s\nwant config: %s", err, tt.err)
				assert.NotContains(t, err.Error(), "from-file", "the secret is never printed")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, c.Cluster)
		})
	}
}
