package conformance

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/amqp/amqptest"
)

// externalURLEnv points the suite at another broker (e.g. RabbitMQ) to check
// that the tests themselves describe RabbitMQ's behaviour.
const externalURLEnv = "WARREN_TEST_AMQP_URL"

// testBroker is one broker for one test.
type testBroker struct {
	URL      string
	Addr     string // host:port
	External bool   // true when the suite runs against WARREN_TEST_AMQP_URL
	srv      *amqp.Server
}

// startBroker starts an in-process Warren on a random loopback port, with its
// data in t.TempDir(), and stops it when the test ends. Options may adjust the
// config before start; they are ignored for an external broker, so a test that
// depends on them must call b.skipIfExternal.
func startBroker(t testing.TB, opts ...func(*amqp.Config)) *testBroker {
	t.Helper()
	if url := os.Getenv(externalURLEnv); url != "" {
		u, err := amqp091.ParseURI(url)
		require.NoError(t, err)
		return &testBroker{URL: url, Addr: net.JoinHostPort(u.Host, fmt.Sprint(u.Port)), External: true}
	}
	s := amqptest.NewServer(t, opts...)
	return &testBroker{URL: s.URL, Addr: s.Addr, srv: s.Server}
}

// skipIfExternal skips tests that need an in-process broker's configuration.
func (b *testBroker) skipIfExternal(t testing.TB) {
	t.Helper()
	if b.External {
		t.Skip("needs an in-process Warren (custom config)")
	}
}

// dial opens a client connection and closes it when the test ends.
func (b *testBroker) dial(t testing.TB) *amqp091.Connection {
	t.Helper()
	conn, err := amqp091.Dial(b.URL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// channel opens a connection and a channel on it.
func (b *testBroker) channel(t testing.TB) (*amqp091.Connection, *amqp091.Channel) {
	t.Helper()
	conn := b.dial(t)
	ch, err := conn.Channel()
	require.NoError(t, err)
	return conn, ch
}

// uniqueName gives a queue or exchange name no other test uses, so the suite
// can share one external broker.
func uniqueName(t testing.TB, suffix string) string {
	return fmt.Sprintf("%s.%s.%d", t.Name(), suffix, time.Now().UnixNano())
}
