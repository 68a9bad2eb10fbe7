package amqp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/broker"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("amqp: server closed")

// Server accepts AMQP 0-9-1 connections for a broker.
type Server struct {
	cfg    Config
	log    *slog.Logger
	broker *broker.Broker
	tls    *tls.Config // nil unless cfg.TLS has a certificate
	nextID atomic.Uint64
	open   atomic.Int64 // connections past connection.open, for MaxConnections
	totals serverTotals
	// pending lists connections whose output a reader writes at the end
	// of its run (flush.go).
	pending pendingList

	mu        sync.Mutex // guards listeners, extra, conns, shutdown
	listeners map[net.Listener]*Listener
	extra     []*Listener // listeners served elsewhere (AddListener)
	conns     map[*conn]struct{}
	shutdown  bool
	wg        sync.WaitGroup // every connection goroutine
}

// NewServer opens a broker with cfg.Config (see broker.Open) and builds
// the protocol server over it. It does not listen yet; Shutdown closes the
// broker too.
func NewServer(cfg Config, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:       cfg,
		log:       log,
		listeners: make(map[net.Listener]*Listener),
		conns:     make(map[*conn]struct{}),
	}
	if cfg.TLS.Listen != "" || cfg.TLS.CertFile != "" {
		tc, err := cfg.TLS.serverTLS()
		if err != nil {
			return nil, err
		}
		s.tls = tc
	}
	b, err := broker.Open(cfg.Config, broker.Options{Log: log})
	if err != nil {
		return nil, err
	}
	s.broker = b
	b.RegisterCloser(s)
	return s, nil
}

// Broker is the broker the server serves: users, vhosts, permissions and
// every state change (Broker.Apply).
func (s *Server) Broker() *broker.Broker { return s.broker }

// ListenAndServe listens on cfg.Listen and serves until Shutdown.
func (s *Server) ListenAndServe() error {
	l, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return err
	}
	return s.Serve(l)
}

// Serve accepts connections on l until Shutdown; it always returns a non-nil
// error, ErrServerClosed after Shutdown.
func (s *Server) Serve(l net.Listener) error {
	return s.serve(l, Listener{Protocol: "amqp", Addr: l.Addr()})
}

// serve is Serve for a listener described by info.
func (s *Server) serve(l net.Listener, info Listener) error {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = &info
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()

	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.closing() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors and the like: back off, as net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		raw := nc
		if tc, ok := nc.(*tls.Conn); ok {
			raw = tc.NetConn()
		}
		if tc, ok := raw.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		c := newConn(s, nc)
		if !s.track(c) {
			nc.Close()
			return ErrServerClosed
		}
		go func() {
			defer s.wg.Done()
			c.serve()
			s.untrack(c)
		}()
	}
}

// handshakeTimeout is how long a new client has to open its connection.
func (s *Server) handshakeTimeout() time.Duration {
	if s.cfg.HandshakeTimeout > 0 {
		return s.cfg.HandshakeTimeout
	}
	return defaultHandshakeTimeout
}

func (s *Server) closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdown
}

// track registers a new connection unless shutdown has begun.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Shutdown stops accepting, closes every connection with 320
// CONNECTION_FORCED, waits for them to finish (or for ctx) and closes the
// broker.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	for l := range s.listeners {
		l.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	for _, c := range conns {
		c.forceClose(newError(320, "broker forced connection closure with reason 'shutdown'"))
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		for _, c := range conns {
			c.nc.Close()
		}
		<-done
		err := s.broker.Close()
		return errors.Join(fmt.Errorf("amqp: shutdown: %w", ctx.Err()), err)
	}
	return s.broker.Close()
}

// connCount is the number of connections being served.
func (s *Server) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// CloseConnections closes the open connections whose user and vhost match
// with 320 CONNECTION_FORCED and reason: the broker calls it when a user or
// a vhost is deleted (broker.ConnectionCloser).
func (s *Server) CloseConnections(match func(user, vhost string) bool, reason string) {
	for _, c := range s.openConns() {
		if match(c.user.Name(), c.vh.Name) {
			c.log.Info("closing connection", "reason", reason)
			c.forceClose(newError(wire.ConnectionForced, "%s", reason))
		}
	}
}
