package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
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
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/plugins"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// buildBinary builds the command once for the package's tests.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the command")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "warren-bin")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "warren")
		out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return builtBin
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startBinary starts the command and waits for RabbitMQ's "Server startup
// complete" line, as testcontainers does; it returns the log so far and
// stops the process when the test ends.
func startBinary(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(buildBinary(t), args...)
	cmd.Env = append(append(os.Environ(), "WARREN_RABBITMQ_DIR="), env...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		for range lines { // drain, so the process can exit
		}
		_ = cmd.Wait()
	})
	var log strings.Builder
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "exited before startup:\n%s", log.String())
			log.WriteString(l + "\n")
			if strings.Contains(l, "Server startup complete") {
				return log.String()
			}
		case <-timeout:
			t.Fatalf("no startup line after 20s:\n%s", log.String())
		}
	}
}

// TestRabbitMQContract: the same binary started as RabbitMQ's image would
// be, with a rabbitmq.conf and RABBITMQ_DEFAULT_USER, serves that user and
// not guest, on the configured ports, logging what tools wait for.
func TestRabbitMQContract(t *testing.T) {
	amqpPort, mgmtPort, promPort := freePort(t), freePort(t), freePort(t)
	etc := t.TempDir()
	conf := filepath.Join(etc, "rabbitmq.conf")
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf(`# as a compose file mounts it
listeners.tcp.default = 127.0.0.1:%d
management.tcp.port = %d
management.tcp.ip = 127.0.0.1
prometheus.tcp.port = %d
prometheus.tcp.ip = 127.0.0.1
default_user = fromconf
default_pass = overridden
loopback_users.guest = false
heartbeat = 20
cluster_formation.classic_config.nodes.1 = rabbit@other
`, amqpPort, mgmtPort, promPort)), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(etc, "enabled_plugins"), []byte("[rabbitmq_management,rabbitmq_prometheus].\n"), 0o600))

	log := startBinary(t, []string{"RABBITMQ_CONFIG_FILE=" + conf, "RABBITMQ_DEFAULT_USER=app", "RABBITMQ_DEFAULT_PASS=app-secret"},
		"--storage.dir", t.TempDir())
	for _, want := range []string{
		fmt.Sprintf("started TCP listener on 127.0.0.1:%d", amqpPort),
		fmt.Sprintf("Management plugin: HTTP (non-TLS) listener started on port %d", mgmtPort),
		fmt.Sprintf("Prometheus metrics: HTTP (non-TLS) listener started on port %d", promPort),
		fmt.Sprintf("Server startup complete; %d plugins started.", len(plugins.Names())),
		"cluster_formation.classic_config.nodes.1",
		"rabbitmq_management,rabbitmq_prometheus",
	} {
		assert.Contains(t, log, want)
	}

	// The client asks for more than the server's heartbeat: it gets 20s.
	conn, err := amqp091.DialConfig(fmt.Sprintf("amqp://app:app-secret@127.0.0.1:%d/", amqpPort), amqp091.Config{Heartbeat: time.Minute})
	require.NoError(t, err)
	defer conn.Close()
	assert.Equal(t, "RabbitMQ", conn.Properties["product"])
	assert.Equal(t, "3.10.8", conn.Properties["version"])
	assert.Contains(t, conn.Properties["information"], "Warren")
	assert.Equal(t, 20*time.Second, conn.Config.Heartbeat)
	ch, err := conn.Channel()
	require.NoError(t, err)
	_, err = ch.QueueDeclare("", false, true, true, false, nil)
	require.NoError(t, err, "the default user may configure the default vhost")

	// As in RabbitMQ, guest is not created when default_user is set.
	_, err = amqp091.Dial(fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", amqpPort))
	require.Error(t, err)
	var ae *amqp091.Error
	require.True(t, errors.As(err, &ae), "%v", err)
	assert.Equal(t, amqp091.AccessRefused, ae.Code)
}

// TestListenerInUse: a listener that cannot bind stops the start with exit
// status 1 and one line naming it, whichever listener it is.
func TestListenerInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	addr := taken.Addr().String()
	free := func() string { return fmt.Sprintf("127.0.0.1:%d", freePort(t)) }
	for _, key := range []string{"amqp.listen", "http.listen", "prometheus.listen", "pprof.listen"} {
		t.Run(key, func(t *testing.T) {
			args := map[string]string{"amqp.listen": free(), "http.listen": free(), "prometheus.listen": free(), "pprof.listen": free()}
			args[key] = addr
			cmd := exec.Command(buildBinary(t), "--storage.dir", t.TempDir(), "--amqp.listen", args["amqp.listen"],
				"--http.listen", args["http.listen"], "--prometheus.listen", args["prometheus.listen"], "--pprof.listen", args["pprof.listen"])
			cmd.Env = append(os.Environ(), "WARREN_RABBITMQ_DIR=")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			require.True(t, errors.As(err, &ee), "started anyway: %v\n%s", err, stderr.String())
			assert.Equal(t, 1, ee.ExitCode())
			// Log lines may come before it (storage recovery); the failure
			// is the last line, and the only one naming the key.
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			assert.Equal(t, fmt.Sprintf("warren: %s: listen tcp %s: bind: address already in use", key, addr), lines[len(lines)-1])
			assert.Equal(t, 1, strings.Count(stderr.String(), key), stderr.String())
			assert.NotContains(t, stderr.String(), "Server startup complete")
		})
	}
}

// selfSigned writes a self-signed certificate and key for 127.0.0.1.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "warren test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	return certFile, keyFile
}

// TestTLSListenerLine: testcontainers' RabbitMQ module with TLS waits for
// "started TLS (SSL) listener on [::]:5671"; a listener on every interface
// is logged in those words, from testcontainers' own rabbitmq.conf.
func TestTLSListenerLine(t *testing.T) {
	cert, key := selfSigned(t)
	tlsPort := freePort(t)
	conf := filepath.Join(t.TempDir(), "rabbitmq-testcontainers.conf")
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf(`# Injected by testcontainers
default_user = guest
default_pass = guest
listeners.tcp = none
listeners.ssl.default = %d
ssl_options.certfile = %s
ssl_options.keyfile = %s
ssl_options.depth = 1
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
`, tlsPort, cert, key)), 0o600))
	log := startBinary(t, []string{"RABBITMQ_CONFIG_FILE=" + conf}, "--storage.dir", t.TempDir(),
		"--http.listen=", "--prometheus.listen=")
	assert.Contains(t, log, fmt.Sprintf("started TLS (SSL) listener on [::]:%d", tlsPort))
	assert.NotContains(t, log, "started TCP listener", "listeners.tcp = none")
	// Without the management and Prometheus listeners, their plugins are
	// not counted.
	assert.Contains(t, log, fmt.Sprintf("Server startup complete; %d plugins started.", len(startedPlugins(false, false))))
	assert.NotContains(t, log, "rabbitmq_management")

	conn, err := amqp091.DialTLS(fmt.Sprintf("amqps://guest:guest@127.0.0.1:%d/", tlsPort), &tls.Config{InsecureSkipVerify: true})
	require.NoError(t, err)
	conn.Close()
}

// TestLoopbackUsers: guest may connect only from loopback, unless
// loopback_users says otherwise. It needs an address of this machine that is
// not loopback.
func TestLoopbackUsers(t *testing.T) {
	var ip net.IP
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			ip = n.IP
			break
		}
	}
	if ip == nil {
		t.Skip("no non-loopback IPv4 address")
	}
	for _, tt := range []struct {
		conf string
		ok   bool
	}{{"", false}, {"loopback_users.guest = false\n", true}, {"loopback_users = none\n", true}} {
		t.Run(tt.conf, func(t *testing.T) {
			port := freePort(t)
			conf := filepath.Join(t.TempDir(), "rabbitmq.conf")
			require.NoError(t, os.WriteFile(conf, []byte(tt.conf), 0o600))
			startBinary(t, []string{"RABBITMQ_CONFIG_FILE=" + conf}, "--storage.dir", t.TempDir(),
				"--amqp.listen", fmt.Sprintf(":%d", port), "--http.listen=", "--prometheus.listen=")
			conn, err := amqp091.Dial(fmt.Sprintf("amqp://guest:guest@%s/", net.JoinHostPort(ip.String(), fmt.Sprint(port))))
			if tt.ok {
				require.NoError(t, err)
				conn.Close()
				return
			}
			var ae *amqp091.Error
			require.True(t, errors.As(err, &ae), "%v", err)
			// amqp091-go reports its own text for a refused login.
			assert.Equal(t, amqp091.AccessRefused, ae.Code)
		})
	}
}
