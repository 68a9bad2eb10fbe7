package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/storage"
)

// env is a fake environment for loadConfig.
type env map[string]string

func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

// writeFile writes a config file into a fresh temp dir and returns its path.
func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "warren.yaml")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	return p
}

func TestMain(m *testing.M) {
	// Never read the machine's /etc/rabbitmq (a RabbitMQ may run beside).
	rabbitmqDir = ""
	os.Exit(m.Run())
}

func TestDefaultsMatchAMQPDefaultConfig(t *testing.T) {
	c, err := loadConfig(nil, env{}.lookup)
	require.NoError(t, err)
	// No differences allowed: amqp.DefaultConfig documents itself as this file.
	assert.Equal(t, amqp.DefaultConfig(), brokerConfig(c))
	assert.Equal(t, "INFO", c.LogLevel.String())
}

func TestHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, exitOK, run([]string{"--help"}, env{}.lookup, &out, &errOut))
	assert.Empty(t, errOut.String())
	for _, want := range []string{"--config", "--amqp.listen ", "--limits.frame_max ", "--version", "WARREN_"} {
		assert.Contains(t, out.String(), want)
	}
}

// TestBinary checks what only a real process shows: exit codes and stderr.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := buildBinary(t)

	runBin := func(env []string, args ...string) (code int, stdout, stderr string) {
		cmd := exec.Command(bin, args...)
		// Never the machine's /etc/rabbitmq: a RabbitMQ may run beside.
		cmd.Env = append(append(os.Environ(), "WARREN_RABBITMQ_DIR="), env...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), o.String(), e.String()
		}
		require.NoError(t, err)
		return 0, o.String(), e.String()
	}

	code, stdout, _ := runBin(nil, "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "--limits.frame_max")

	code, stdout, _ = runBin(nil, "--version")
	assert.Equal(t, 0, code)
	assert.Equal(t, "warren "+broker.Version+"\n", stdout)

	code, _, stderr := runBin(nil, "--limits.frame_max", "10")
	assert.Equal(t, 2, code)
	assert.Equal(t, "warren: config: limits.frame_max: must be between 8192 and 1048576 (got 10); set by --limits.frame_max\n", stderr)

	code, _, stderr = runBin([]string{"WARREN_LIMITS_HEARTBEAT=abc"})
	assert.Equal(t, 2, code)
	assert.Equal(t, "warren: config: limits.heartbeat: invalid duration \"abc\"; set by WARREN_LIMITS_HEARTBEAT\n", stderr)

	// Clustering settings are checked, and a node given peers refuses to
	// start until clustering is finished.
	code, _, stderr = runBin([]string{"WARREN_CLUSTER_NODE=a"}, "--cluster.peers", "a=h:1,a=h:2")
	assert.Equal(t, 2, code)
	assert.Equal(t, "warren: config: cluster.peers: names node \"a\" twice; set by --cluster.peers\n", stderr)
	code, _, stderr = runBin([]string{"WARREN_CLUSTER_SECRET=s"}, "--cluster.node", "a", "--cluster.peers", "a=127.0.0.1:25672,b=127.0.0.2:25672")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "warren: cluster.peers: clustering is not finished in Warren")
	assert.NotContains(t, stderr, "started", "nothing was started")

	code, _, stderr = runBin(nil, "--bogus")
	assert.Equal(t, 2, code)
	assert.Equal(t, "warren: unknown flag: --bogus (see warren --help)\n", stderr)

	// A taken port fails before anything is served, with exit code 1.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	data := filepath.Join(t.TempDir(), "data")
	code, _, stderr = runBin(nil, "--amqp.listen", l.Addr().String(), "--storage.dir", data)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "warren: amqp.listen: ")
	assert.Contains(t, stderr, "address already in use")
	assert.DirExists(t, data, "the data directory is created before listening")

	// A data directory another process holds, or one that is not Warren's,
	// refuses to start with exit code 2: never an empty broker instead.
	held, err := storage.Open(filepath.Join(t.TempDir(), "held"), storage.Options{})
	require.NoError(t, err)
	defer held.Close()
	code, _, stderr = runBin(nil, "--amqp.listen", "127.0.0.1:0", "--http.listen=", "--prometheus.listen=", "--storage.dir", filepath.Dir(held.Path()))
	assert.Equal(t, 2, code, stderr)
	assert.Contains(t, stderr, "in use")
	corrupt := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(corrupt, storage.FileName), bytes.Repeat([]byte("not a database "), 1000), 0o600))
	code, _, stderr = runBin(nil, "--amqp.listen", "127.0.0.1:0", "--http.listen=", "--prometheus.listen=", "--storage.dir", corrupt)
	assert.Equal(t, 2, code, stderr)
}
