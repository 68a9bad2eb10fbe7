package management_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp"
)

// get returns a GET's status and body, as guest.
func (e *env) get(path string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest("GET", e.http.URL+path, nil)
	require.NoError(e.t, err)
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// TestHealthChecks: every RabbitMQ 3.10 health check answers from the
// node's listeners and alarms, with RabbitMQ's bodies (checked against a
// RabbitMQ 3.10.8 node with curl).
func TestHealthChecks(t *testing.T) {
	e := start(t)
	// Serve registers the AMQP listener on its own goroutine.
	require.Eventually(t, func() bool { return len(e.srv.Listeners()) == 1 }, 5*time.Second, 10*time.Millisecond)
	// The management listener, as cmd/warren registers it.
	defer e.srv.AddListener(amqp.Listener{Protocol: "http", Addr: e.http.Listener.Addr()})()
	amqpPort := e.srv.Listeners()[0].Port()
	httpPort := e.http.Listener.Addr().(*net.TCPAddr).Port
	node, _ := e.nodeName()
	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{
		{"/api/health/checks/alarms", 200, `{"status":"ok"}`},
		{"/api/health/checks/local-alarms", 200, `{"status":"ok"}`},
		{"/api/health/checks/virtual-hosts", 200, `{"status":"ok"}`},
		{"/api/health/checks/node-is-mirror-sync-critical", 200, `{"status":"ok","reason":"single node cluster"}`},
		{"/api/health/checks/node-is-quorum-critical", 200, `{"status":"ok","reason":"single node cluster"}`},
		{fmt.Sprintf("/api/health/checks/port-listener/%d", amqpPort), 200, fmt.Sprintf(`{"status":"ok","port":%d}`, amqpPort)},
		{fmt.Sprintf("/api/health/checks/port-listener/%d", httpPort), 200, fmt.Sprintf(`{"status":"ok","port":%d}`, httpPort)},
		{"/api/health/checks/port-listener/9", 503, fmt.Sprintf(`{"status":"failed","reason":"No active listener","missing":9,"ports":[%d,%d]}`, amqpPort, httpPort)},
		{"/api/health/checks/port-listener/abc", 400, `{"error":"bad_request","reason":"Invalid port"}`},
		{"/api/health/checks/protocol-listener/amqp", 200, `{"status":"ok","protocol":"amqp"}`},
		{"/api/health/checks/protocol-listener/AMQP091", 200, `{"status":"ok","protocol":"amqp"}`},
		{"/api/health/checks/protocol-listener/management", 200, `{"status":"ok","protocol":"http"}`},
		{"/api/health/checks/protocol-listener/mqtt", 503, `{"status":"failed","reason":"No active listener","missing":"mqtt","protocols":["amqp","http"]}`},
		{"/api/health/checks/protocol-listener/amqps", 503, `{"status":"failed","reason":"No active listener","missing":"amqp/ssl","protocols":["amqp","http"]}`},
		{"/api/health/checks/certificate-expiration/1/months", 200, `{"status":"ok"}`},
		{"/api/health/checks/certificate-expiration/1/fortnights", 400, `{"error":"bad_request","reason":"Time unit not recognised. Supported units: days, weeks, months, years."}`},
		{"/api/health/checks/certificate-expiration/x/days", 400, `{"error":"bad_request","reason":"Invalid expiration value."}`},
		{"/api/healthchecks/node", 200, `{"status":"ok"}`},
		{"/api/healthchecks/node/" + node, 200, `{"status":"ok"}`},
		{"/api/aliveness-test/%2F", 200, `{"status":"ok"}`},
		// What RabbitMQ does not have is not found.
		{"/api/healthchecks/node/rabbit@elsewhere", 404, `{"error":"Object Not Found","reason":"Not Found"}`},
		{"/api/aliveness-test/nowhere", 404, `{"error":"Object Not Found","reason":"Not Found"}`},
		{"/api/health/checks", 404, `{"error":"Object Not Found","reason":"Not Found"}`},
		{"/api/health/checks/everything", 404, `{"error":"Object Not Found","reason":"Not Found"}`},
		{"/api/health/checks/port-listener", 404, `{"error":"Object Not Found","reason":"Not Found"}`},
		{"/api/health/checks/alarms/x", 404, `{"error":"Object Not Found","reason":"Not Found"}`},
		{"/api/health/checks/certificate-expiration/1", 404, `{"error":"Object Not Found","reason":"Not Found"}`},
	} {
		t.Run(tc.path, func(t *testing.T) {
			status, body := e.get(tc.path)
			require.Equal(t, tc.status, status, body)
			require.JSONEq(t, tc.body, body)
		})
	}
	require.Equal(t, 405, e.do("POST", "/api/health/checks/alarms", nil, nil))
}

// nodeName is the node the API reports.
func (e *env) nodeName() (string, error) {
	var ov struct {
		Node string `json:"node"`
	}
	if e.do("GET", "/api/overview", nil, &ov) != 200 {
		return "", fmt.Errorf("no overview")
	}
	return ov.Node, nil
}

// TestHealthChecksDuringAlarm: the alarm checks fail while a memory or disk
// alarm is on (raised as conformance/alarm_test.go raises them) and pass
// again once it clears; /api/nodes reports the same state.
func TestHealthChecksDuringAlarm(t *testing.T) {
	for _, tc := range []struct {
		resource, erlang string
		set              func(*amqp.Server, bool)
	}{
		{"memory", "memory", func(s *amqp.Server, on bool) {
			if on {
				s.Broker().SetMemoryHighWatermark(1) // any process is above one byte
			} else {
				s.Broker().SetMemoryHighWatermark(0)
			}
		}},
		{"disk space", "disk", func(s *amqp.Server, on bool) {
			if on {
				s.Broker().SetDiskFreeLimit(1 << 62) // more than any disk has free
			} else {
				s.Broker().SetDiskFreeLimit(0)
			}
		}},
	} {
		t.Run(tc.resource, func(t *testing.T) {
			e := start(t)
			node, err := e.nodeName()
			require.NoError(t, err)
			tc.set(e.srv, true)
			for path, reason := range map[string]string{
				"/api/health/checks/alarms":       "There are alarms in effect in the cluster",
				"/api/health/checks/local-alarms": "There are alarms in effect on the node",
			} {
				status, body := e.get(path)
				require.Equal(t, 503, status, body)
				require.Equal(t, fmt.Sprintf(`{"alarms":[{"node":%q,"resource":%q}],"reason":%q,"status":"failed"}`, node, tc.resource, reason), body)
			}
			status, body := e.get("/api/healthchecks/node")
			require.Equal(t, 503, status)
			require.JSONEq(t, fmt.Sprintf(`{"status":"failed","reason":"resource alarm(s) in effect:[{{resource_limit,%s,%s},[]}]"}`, tc.erlang, quoteAtom(node)), body)
			var nodes []map[string]any
			require.Equal(t, 200, e.do("GET", "/api/nodes", nil, &nodes))
			require.Equal(t, tc.resource == "memory", nodes[0]["mem_alarm"])
			require.Equal(t, tc.resource == "disk space", nodes[0]["disk_free_alarm"])

			tc.set(e.srv, false)
			for _, path := range []string{"/api/health/checks/alarms", "/api/health/checks/local-alarms", "/api/healthchecks/node"} {
				status, body := e.get(path)
				require.Equal(t, 200, status, body)
				require.Equal(t, `{"status":"ok"}`, body)
			}
		})
	}
}

// quoteAtom quotes a node name as Erlang prints an atom that needs quotes
// (host names with dots or dashes do).
func quoteAtom(s string) string {
	for _, r := range s {
		if !(r == '_' || r == '@' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return "'" + s + "'"
		}
	}
	return s
}

// TestCertificateExpirationCheck: a TLS listener whose certificate ends
// within the asked time fails the check, naming the listener and the date.
func TestCertificateExpirationCheck(t *testing.T) {
	dir := t.TempDir()
	notAfter := time.Now().Add(10 * 24 * time.Hour).UTC().Truncate(time.Second)
	certFile, keyFile := writeCert(t, dir, notAfter)
	e := startWith(t, func(cfg *amqp.Config) {
		cfg.TLS = amqp.TLSConfig{Listen: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile}
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go e.srv.ServeTLS(l) //nolint:errcheck // ErrServerClosed at the end
	require.Eventually(t, func() bool { return len(e.srv.Listeners()) == 2 }, 5*time.Second, 10*time.Millisecond)
	node, err := e.nodeName()
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port

	status, body := e.get("/api/health/checks/certificate-expiration/1/weeks")
	require.Equal(t, 200, status, body)
	status, body = e.get("/api/health/checks/protocol-listener/amqps")
	require.Equal(t, 200, status, body)
	require.JSONEq(t, `{"status":"ok","protocol":"amqp/ssl"}`, body)

	status, body = e.get("/api/health/checks/certificate-expiration/2/WEEKS")
	require.Equal(t, 503, status, body)
	ends := fmt.Sprintf("%d-%02d-%02d %d:%02d:%02d", notAfter.Year(), notAfter.Month(), notAfter.Day(), notAfter.Hour(), notAfter.Minute(), notAfter.Second())
	require.JSONEq(t, fmt.Sprintf(`{"status":"failed","reason":"Certificates expiring","expired":[
		{"cacertfile":"","cacertfile_expires_on":[],"certfile":%q,"certfile_expires_on":[%q],
		 "interface":"127.0.0.1","node":%q,"port":%d,"protocol":"amqp/ssl"}]}`, certFile, ends, node, port), body)
}

// writeCert writes a self-signed certificate ending at notAfter and its key.
func writeCert(t *testing.T, dir string, notAfter time.Time) (certFile, keyFile string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	return certFile, keyFile
}
