// Package amqptest starts real Warren brokers for tests, the way
// net/http/httptest starts HTTP servers: in process, on a random loopback
// port, with storage in the test's temporary directory, in milliseconds.
package amqptest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker"
)

// Server is a running broker: the AMQP server (connections, channels) and
// the broker under it (users, vhosts, Apply, alarms).
type Server struct {
	*amqp.Server
	*broker.Broker
	// Addr is the listener's host:port.
	Addr string
	// URL is an AMQP URI for guest on the default vhost.
	URL string
}

// NewServer starts a broker with amqp.DefaultConfig, data in t.TempDir(),
// after opts have adjusted the configuration, and shuts it down when the
// test ends.
func NewServer(t testing.TB, opts ...func(*amqp.Config)) *Server {
	t.Helper()
	cfg := amqp.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	// Two 2 MiB journal segments per fresh directory instead of two of
	// 8 MiB: a test broker starts in milliseconds.
	cfg.JournalSegmentSize = 2 << 20
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := amqp.NewServer(cfg, nil)
	if err != nil {
		t.Fatalf("amqptest: %v", err)
	}
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_ = srv.Shutdown(context.Background())
		t.Fatalf("amqptest: %v", err)
	}
	go srv.Serve(l) //nolint:errcheck // ErrServerClosed once the test ends
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	addr := l.Addr().String()
	return &Server{Server: srv, Broker: srv.Broker(), Addr: addr, URL: "amqp://guest:guest@" + addr + "/"}
}
