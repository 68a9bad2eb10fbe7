package conformance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// dockerfile is what the image test reads from ../Dockerfile.
type dockerfile struct {
	rootScript  string            // the RUN that lays out the file system
	rootDir     string            // where it lays it out in the builder
	copies      []string          // COPY --from=build lines of the final stage
	env         map[string]string // ENV of the final stage, in order of keys below
	envKeys     []string
	user        string
	expose      []string
	healthcheck []string
	cmd         []string
}

func readDockerfile(t *testing.T, path string) dockerfile {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	d := dockerfile{env: map[string]string{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			if strings.HasPrefix(rest, "scratch") {
				d.copies, d.env, d.envKeys = nil, map[string]string{}, nil // the final stage starts here
			}
		case "RUN":
			if f := strings.Fields(rest); len(f) == 2 && strings.HasSuffix(f[0], "image-root.sh") {
				d.rootScript, d.rootDir = f[0], f[1]
			}
		case "COPY":
			if strings.Contains(rest, "--from=build") {
				d.copies = append(d.copies, rest)
			}
		case "ENV":
			k, v, ok := strings.Cut(rest, "=")
			require.True(t, ok, "ENV KEY=VALUE: %s", line)
			d.env[k] = v
			d.envKeys = append(d.envKeys, k)
		case "USER":
			d.user = rest
		case "EXPOSE":
			d.expose = append(d.expose, strings.Fields(rest)...)
		case "HEALTHCHECK":
			_, js, ok := strings.Cut(rest, "CMD ")
			require.True(t, ok, line)
			require.NoError(t, json.Unmarshal([]byte(js), &d.healthcheck), line)
		case "CMD":
			require.NoError(t, json.Unmarshal([]byte(rest), &d.cmd), line)
		}
	}
	require.NoError(t, sc.Err())
	return d
}

// TestContainerImage checks the image without a container engine (none runs
// on the development machines): it reads ../Dockerfile, lays out the image's
// file system under a temporary root with the script the Dockerfile runs,
// checks the layout and the size, then starts the image's command from that
// root with the image's environment (its absolute paths moved under the
// root) plus what a compose file sets (RABBITMQ_DEFAULT_USER/PASS), and runs
// the image's HEALTHCHECK, a client and rabbitmqctl against it.
func TestContainerImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	d := readDockerfile(t, "../Dockerfile")
	require.Equal(t, "scripts/image-root.sh", d.rootScript)
	require.Equal(t, []string{
		"/rootfs/ /",
		"--chown=999:999 /rootfs/var/lib/rabbitmq/ /var/lib/rabbitmq/",
	}, stripFrom(d.copies))
	require.Equal(t, "999:999", d.user, "not root")
	require.ElementsMatch(t, []string{"5672", "5671", "15672", "15692", "25672"}, d.expose)
	require.Equal(t, []string{"rabbitmq-diagnostics", "-q", "ping"}, d.healthcheck)
	require.Equal(t, "/var/lib/rabbitmq", d.env["WARREN_STORAGE_DIR"])
	require.Equal(t, "/etc/rabbitmq", d.env["WARREN_RABBITMQ_DIR"])

	root := t.TempDir()
	build := exec.Command("sh", "../"+d.rootScript, root)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	// The layout: binaries, RabbitMQ's command names, the user, the config.
	bin := filepath.Join(root, "usr/local/bin")
	size := int64(0)
	for _, name := range []string{"warren", "warrenctl"} {
		fi, err := os.Stat(filepath.Join(bin, name))
		require.NoError(t, err)
		size += fi.Size()
	}
	for link, target := range map[string]string{"rabbitmq-server": "warren", "rabbitmqctl": "warrenctl",
		"rabbitmq-diagnostics": "warrenctl", "rabbitmq-plugins": "warrenctl"} {
		got, err := os.Readlink(filepath.Join(bin, link))
		require.NoError(t, err, link)
		require.Equal(t, target, got, link)
	}
	var files int64
	require.NoError(t, filepath.Walk(root, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			files += fi.Size()
		}
		return err
	}))
	t.Logf("image file system: %.1f MB (binaries %.1f MB)", float64(files)/1e6, float64(size)/1e6)
	require.Less(t, files, int64(25e6), "the image stays under 25 MB")
	passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	require.NoError(t, err)
	require.Contains(t, string(passwd), "rabbitmq:x:999:999:")
	require.DirExists(t, filepath.Join(root, "var/lib/rabbitmq"))
	require.FileExists(t, filepath.Join(root, "etc/rabbitmq/conf.d/10-defaults.conf"))

	// The image's environment, its paths under root; ports of our own,
	// since a RabbitMQ may hold the defaults on this machine.
	env := []string{}
	for _, k := range d.envKeys {
		v := d.env[k]
		if strings.HasPrefix(v, "/") {
			v = filepath.Join(root, v)
		}
		env = append(env, k+"="+v)
	}
	amqpPort, httpPort, promPort := freePort(t), freePort(t), freePort(t)
	env = append(env,
		"WARREN_AMQP_LISTEN=127.0.0.1:"+amqpPort,
		"WARREN_HTTP_LISTEN=127.0.0.1:"+httpPort,
		"WARREN_PROMETHEUS_LISTEN=127.0.0.1:"+promPort,
		"RABBITMQ_DEFAULT_USER=admin", "RABBITMQ_DEFAULT_PASS=s3cret")
	pathOf := func(cmd string) string { return filepath.Join(bin, cmd) }

	broker := exec.Command(pathOf(d.cmd[0]), d.cmd[1:]...)
	broker.Env, broker.Dir = env, filepath.Join(root, "var/lib/rabbitmq")
	var logs syncBuffer
	broker.Stdout, broker.Stderr = &logs, &logs
	require.NoError(t, broker.Start())
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = broker.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = broker.Process.Kill()
		<-exited
	})
	// Generous: the machine may be busy building and testing other packages.
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "Server startup complete") },
		30*time.Second, 20*time.Millisecond, "no startup line")

	run := func(args ...string) (string, int) {
		c := exec.Command(pathOf(args[0]), args[1:]...)
		c.Env = env
		out, err := c.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err)
		}
		return string(out), code
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("broker output:\n%s", logs.String())
		}
	})
	out2, code := run(d.healthcheck...)
	require.Equal(t, 0, code, "HEALTHCHECK: %s", out2)
	require.Equal(t, "Ping succeeded\n", out2)
	out2, code = run("rabbitmqctl", "-q", "list_users")
	require.Equal(t, 0, code, out2)
	require.Contains(t, out2, "admin\t[administrator]")
	out2, code = run("rabbitmq-diagnostics", "-q", "check_port_connectivity")
	require.Equal(t, 0, code, out2)

	conn, err := amqp091.Dial(fmt.Sprintf("amqp://admin:s3cret@127.0.0.1:%s/", amqpPort))
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	matches, _ := filepath.Glob(filepath.Join(root, "var/lib/rabbitmq/*"))
	require.NotEmpty(t, matches, "data under /var/lib/rabbitmq")

	require.NoError(t, broker.Process.Signal(syscall.SIGTERM))
	select {
	case <-exited:
		require.NoError(t, waitErr, logs.String())
	case <-time.After(timeout):
		t.Fatal("no exit after SIGTERM")
	}
	_, code = run(d.healthcheck...)
	require.Equal(t, 69, code, "the health check fails once the broker is gone")
}

func stripFrom(copies []string) []string {
	out := make([]string, len(copies))
	for i, c := range copies {
		out[i] = strings.TrimSpace(strings.Replace(c, "--from=build", "", 1))
	}
	return out
}

// freePort is a loopback port nobody listens on now.
func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return p
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
