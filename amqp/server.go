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

	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/storage"
	"github.com/warrenmq/warren/vhost"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("amqp: server closed")

// Version is the broker version reported to clients.
var Version = "0.1.0"

// Server accepts AMQP 0-9-1 connections and owns the virtual hosts.
type Server struct {
	cfg    Config
	log    *slog.Logger
	store  *storage.Store
	budget *queue.Budget // memory for durable queues' backlogs, shared by every vhost
	tls    *tls.Config   // nil unless cfg.TLS has a certificate
	nextID atomic.Uint64
	open   atomic.Int64 // connections past connection.open, for MaxConnections
	alarms alarms
	stop   chan struct{} // closed by Shutdown: ends background work

	// reg is the users and virtual hosts, read lock-free (see registry);
	// only Apply replaces it, holding opMu.
	reg atomic.Pointer[registry]
	// opMu serializes ServerOps (Apply): one change to users, vhosts or
	// permissions at a time, memory and storage together.
	opMu sync.Mutex

	mu        sync.Mutex // guards listeners, extra, conns, shutdown
	listeners map[net.Listener]*Listener
	extra     []*Listener // listeners served elsewhere (AddListener)
	conns     map[*conn]struct{}
	shutdown  bool
	wg        sync.WaitGroup // every connection goroutine
}

// NewServer builds a server from cfg. It does not listen yet.
func NewServer(cfg Config, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:       cfg,
		log:       log,
		listeners: make(map[net.Listener]*Listener),
		conns:     make(map[*conn]struct{}),
		stop:      make(chan struct{}),
	}
	s.alarms.changed = make(chan struct{})
	s.alarms.memLimit, s.alarms.diskLimit = cfg.MemoryHighWatermark, cfg.DiskFreeLimit
	if cfg.TLS.Listen != "" || cfg.TLS.CertFile != "" {
		tc, err := cfg.TLS.serverTLS()
		if err != nil {
			return nil, err
		}
		s.tls = tc
	}
	store, err := storage.Open(cfg.DataDir, storage.Options{Fault: cfg.StorageFault})
	if err != nil {
		return nil, err
	}
	s.store = store
	s.budget = queue.NewBudget(cfg.QueueMemoryBudget)
	// Users, vhosts and permissions come back first, then the config's
	// baseline fills in what is missing; only then do the vhosts, all of
	// them, recover their queues.
	if err := s.restoreDefinitions(); err != nil {
		store.Close()
		return nil, err
	}
	if err := s.applyBaseline(); err != nil {
		store.Close()
		return nil, err
	}
	if err := s.recover(); err != nil {
		store.Close()
		return nil, err
	}
	s.checkAlarms()
	go s.watchAlarms(s.stop)
	return s, nil
}

// recover loads durable definitions and messages. Entries that no queue
// owns (a queue deleted just before a crash, whose entries were still being
// dropped) are deleted afterwards in the background, so they do not delay
// the start.
func (s *Server) recover() error {
	start := time.Now()
	owned := make(map[string]bool)
	total := 0
	for _, v := range s.VHosts() {
		keys, n, err := v.Recover()
		if err != nil {
			return err
		}
		total += n
		for _, k := range keys {
			owned[k] = true
		}
	}
	s.log.Info("recovered", "messages", total, "took", time.Since(start).Round(time.Millisecond))
	stored, err := s.store.Queues()
	if err != nil {
		return err
	}
	var orphans []string
	for _, k := range stored {
		if !owned[k] {
			orphans = append(orphans, k)
		}
	}
	if len(orphans) > 0 {
		go func() {
			for _, k := range orphans {
				if err := s.store.DropEntries(k); err != nil {
					s.log.Error("dropping the entries of a deleted queue failed", "err", err)
					return
				}
			}
			s.log.Info("dropped the entries of deleted queues", "queues", len(orphans))
		}()
	}
	return nil
}

// VHost returns the named virtual host, or nil.
func (s *Server) VHost(name string) *vhost.VHost {
	if e := s.reg.Load().vhosts[name]; e != nil {
		return e.v
	}
	return nil
}

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
// CONNECTION_FORCED and waits for them to finish, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.shutdown {
		close(s.stop)
	}
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
		err := s.store.Close()
		return errors.Join(fmt.Errorf("amqp: shutdown: %w", ctx.Err()), err)
	}
	return s.store.Close()
}

// connCount is the number of connections being served.
func (s *Server) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
