package conformance

// TLS and the EXTERNAL mechanism. RabbitMQ serves AMQPS on a second listener
// and, with rabbitmq_auth_mechanism_ssl, offers EXTERNAL to clients with a
// verified certificate, logging them in as the user named by its CN. These
// tests need Warren's configuration and do not run against an external broker.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker"
)

// testPKI is a throwaway CA with a server certificate for 127.0.0.1 and
// client certificates, written as PEM files.
type testPKI struct {
	dir     string
	caPool  *x509.CertPool
	ca      *x509.Certificate
	caKey   *ecdsa.PrivateKey
	serial  int64
	CAFile  string
	CrtFile string
	KeyFile string
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir(), caPool: x509.NewCertPool()}
	p.ca, p.caKey = p.issue(t, "Warren test CA", nil, nil)
	p.caPool.AddCert(p.ca)
	p.CAFile = p.writePEM(t, "ca.pem", "CERTIFICATE", p.ca.Raw)
	srv, key := p.issue(t, "127.0.0.1", p.ca, p.caKey)
	p.CrtFile = p.writePEM(t, "server.pem", "CERTIFICATE", srv.Raw)
	p.KeyFile = p.writeKey(t, "server.key", key)
	return p
}

// issue makes a certificate for cn, signed by parent (self-signed CA when nil).
func (p *testPKI) issue(t testing.TB, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
	}
	if parent == nil {
		tmpl.IsCA = true
		tmpl.BasicConstraintsValid = true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
		parent, parentKey = tmpl, key
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		if ip := net.ParseIP(cn); ip != nil {
			tmpl.IPAddresses = []net.IP{ip}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert, key
}

func (p *testPKI) writePEM(t testing.TB, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
	return path
}

func (p *testPKI) writeKey(t testing.TB, name string, key *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return p.writePEM(t, name, "EC PRIVATE KEY", der)
}

// client returns a TLS client config trusting the test CA, presenting a
// certificate for cn unless cn is empty.
func (p *testPKI) client(t testing.TB, cn string) *tls.Config {
	t.Helper()
	cfg := &tls.Config{RootCAs: p.caPool, MinVersion: tls.VersionTLS12}
	if cn != "" {
		cert, key := p.issue(t, cn, p.ca, p.caKey)
		cfg.Certificates = []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}}
	}
	return cfg
}

// startTLSBroker starts an in-process Warren serving plain AMQP and AMQPS,
// with the users guest and alice. It returns the broker (plain) and the
// amqps address.
func startTLSBroker(t *testing.T, p *testPKI, adjust func(*amqp.TLSConfig)) (*testBroker, string) {
	t.Helper()
	if os.Getenv(externalURLEnv) != "" {
		t.Skip("needs an in-process Warren (custom config)")
	}
	cfg := amqp.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.TLS = amqp.TLSConfig{Listen: "127.0.0.1:0", CertFile: p.CrtFile, KeyFile: p.KeyFile, CAFile: p.CAFile, VerifyPeer: true}
	if adjust != nil {
		adjust(&cfg.TLS)
	}
	cfg.Users = append(cfg.Users, broker.User{
		Name: "alice", Password: "not-used-by-external",
		Permissions: map[string]broker.Permission{"/": {Configure: ".*", Write: ".*", Read: ".*"}},
	})
	srv, err := amqp.NewServer(cfg, nil)
	require.NoError(t, err)
	l, err := net.Listen("tcp", cfg.Listen)
	require.NoError(t, err)
	tl, err := net.Listen("tcp", cfg.TLS.Listen)
	require.NoError(t, err)
	go srv.Serve(l)     //nolint:errcheck // returns ErrServerClosed at cleanup
	go srv.ServeTLS(tl) //nolint:errcheck // returns ErrServerClosed at cleanup
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	addr := l.Addr().String()
	return &testBroker{URL: "amqp://guest:guest@" + addr + "/", Addr: addr, srv: srv}, tl.Addr().String()
}

func dialTLS(url string, cfg *tls.Config, sasl ...amqp091.Authentication) (*amqp091.Connection, error) {
	return amqp091.DialConfig(url, amqp091.Config{TLSClientConfig: cfg, SASL: sasl, Dial: amqp091.DefaultDial(timeout)})
}

// roundTrip publishes a message over conn and consumes it back.
func roundTrip(t *testing.T, conn *amqp091.Connection) {
	t.Helper()
	ch, err := conn.Channel()
	require.NoError(t, err)
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.Confirm(false))
	conf, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "", q.Name, false, false,
		amqp091.Publishing{Body: []byte("over tls")})
	require.NoError(t, err)
	ok, err := conf.WaitContext(context.Background())
	require.NoError(t, err)
	require.True(t, ok)
	d, err := ch.Consume(q.Name, "", false, true, false, false, nil)
	require.NoError(t, err)
	m := recv(t, d)
	require.Equal(t, "over tls", string(m.Body))
	require.NoError(t, m.Ack(false))
}

func TestTLSPlainLoginAndTraffic(t *testing.T) {
	p := newTestPKI(t)
	_, amqps := startTLSBroker(t, p, nil)

	// No client certificate: PLAIN over TLS, as with any amqps:// URL.
	conn, err := dialTLS("amqps://guest:guest@"+amqps+"/", p.client(t, ""))
	require.NoError(t, err)
	defer conn.Close()
	require.True(t, conn.ConnectionState().HandshakeComplete)
	roundTrip(t, conn)

	// A client that does not trust the server's CA refuses it.
	_, err = dialTLS("amqps://guest:guest@"+amqps+"/", &tls.Config{MinVersion: tls.VersionTLS12})
	require.Error(t, err)
}

func TestTLSExternalMechanism(t *testing.T) {
	p := newTestPKI(t)
	b, amqps := startTLSBroker(t, p, nil)

	// A verified certificate with CN=alice logs in as alice, no password.
	conn, err := dialTLS("amqps://"+amqps+"/", p.client(t, "alice"), &amqp091.ExternalAuth{})
	require.NoError(t, err)
	defer conn.Close()
	roundTrip(t, conn)

	// A certificate naming no configured user is refused with 403.
	_, err = dialTLS("amqps://"+amqps+"/", p.client(t, "mallory"), &amqp091.ExternalAuth{})
	requireAMQPError(t, err, amqp091.AccessRefused, "") // amqp091 replaces the text with its own

	// EXTERNAL is not offered without a client certificate, nor on plain TCP.
	_, err = dialTLS("amqps://"+amqps+"/", p.client(t, ""), &amqp091.ExternalAuth{})
	require.ErrorIs(t, err, amqp091.ErrSASL)
	_, err = amqp091.DialConfig("amqp://"+b.Addr+"/", amqp091.Config{SASL: []amqp091.Authentication{&amqp091.ExternalAuth{}}, Dial: amqp091.DefaultDial(timeout)})
	require.ErrorIs(t, err, amqp091.ErrSASL)

	// A certificate from another CA is not verified: the TLS handshake fails.
	other := newTestPKI(t)
	cfg := other.client(t, "alice")
	cfg.RootCAs = p.caPool
	_, err = dialTLS("amqps://"+amqps+"/", cfg, &amqp091.ExternalAuth{})
	require.Error(t, err)
}

func TestTLSFailIfNoPeerCert(t *testing.T) {
	p := newTestPKI(t)
	b, amqps := startTLSBroker(t, p, func(c *amqp.TLSConfig) { c.FailIfNoPeerCert = true })

	_, err := dialTLS("amqps://guest:guest@"+amqps+"/", p.client(t, ""))
	require.Error(t, err)

	// With a certificate both mechanisms work.
	conn, err := dialTLS("amqps://guest:guest@"+amqps+"/", p.client(t, "bob"))
	require.NoError(t, err)
	roundTrip(t, conn)
	require.NoError(t, conn.Close())
	conn, err = dialTLS("amqps://"+amqps+"/", p.client(t, "alice"), &amqp091.ExternalAuth{})
	require.NoError(t, err)
	roundTrip(t, conn)
	require.NoError(t, conn.Close())

	// The plain listener is unaffected.
	requireConnUsable(t, b.dial(t))
}

func TestTLSBadCertificateFiles(t *testing.T) {
	cfg := amqp.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.TLS = amqp.TLSConfig{Listen: "127.0.0.1:0", CertFile: filepath.Join(t.TempDir(), "missing.pem"), KeyFile: "x"}
	_, err := amqp.NewServer(cfg, nil)
	require.Error(t, err)
}
