package cluster

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
)

// Peer is a member of the cluster: its node name and the address other
// nodes dial it at.
type Peer struct {
	Name, Addr string
}

// MemberID is the raft member id of the node named name, the same on every
// node: a hash of the name, so that no node has to hand ids out.
func MemberID(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	if id := h.Sum64(); id != 0 {
		return id
	}
	return 1 // raft's None is 0
}

// Handler takes what arrives: quorum.Node implements it.
type Handler interface {
	// Step hands over a message for one group; an error (no such group
	// yet) drops it, and raft sends again.
	Step(group uint64, m pb.Message) error
	// ReportUnreachable says a message of group to member was not sent.
	ReportUnreachable(group, member uint64)
	// ReportSnapshot says whether a snapshot of group reached member.
	ReportSnapshot(group, member uint64, ok bool)
}

// Options configure a Transport.
type Options struct {
	// Cluster is the cluster's name; nodes of another cluster are refused.
	Cluster string
	// Node is this node's name; it must be one of Peers.
	Node string
	// Peers are every member, this node included.
	Peers []Peer
	// Secret is the shared secret every member has (the Erlang cookie's
	// counterpart). It is never sent.
	Secret []byte
	// TLS, if not nil, wraps every inter-node connection: its certificates
	// serve both accepting and dialling (set ClientAuth and ClientCAs to
	// verify peers' certificates, RootCAs for theirs).
	TLS *tls.Config
	// Handler receives messages from peers.
	Handler Handler
	// Logger gets one line per refused or lost connection; nil discards.
	Logger *slog.Logger

	// MinBackoff and MaxBackoff bound the wait between dials of an
	// unreachable peer; 0 means 100ms and 5s.
	MinBackoff, MaxBackoff time.Duration
	// MaxPending is the bytes queued for one peer beyond which messages are
	// dropped (and reported unreachable) instead of queued; 0 means 64 MiB.
	MaxPending int
}

// Limits of the wire format.
const (
	version          = 1
	maxName          = 255
	nonceSize        = 32
	maxFrame         = 256 << 20 // a snapshot of a long queue is the largest message
	handshakeTimeout = 10 * time.Second
	writeTimeout     = 30 * time.Second
)

var magic = [4]byte{'W', 'R', 'N', 'C'}

// ErrClosed is returned by Serve after Close.
var ErrClosed = errors.New("cluster: transport closed")

// Transport carries raft messages between this node and its peers. Send is
// quorum.Transport.
type Transport struct {
	opts  Options
	self  uint64
	log   *slog.Logger
	peers map[uint64]*peer // by member id, without self
	names map[string]Peer  // every member, by name

	mu      sync.Mutex // guards closed, lis, inbound
	closed  bool
	lis     net.Listener
	inbound map[net.Conn]struct{}

	stop chan struct{}
	wg   sync.WaitGroup // accept loop, peer senders, inbound readers
}

// New checks opts and returns a transport; Start or Serve makes it work.
func New(opts Options) (*Transport, error) {
	if len(opts.Secret) == 0 {
		return nil, errors.New("cluster: a secret is required")
	}
	if opts.Handler == nil {
		return nil, errors.New("cluster: a handler is required")
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(5*time.Second, opts.MinBackoff)
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 64 << 20
	}
	t := &Transport{opts: opts, self: MemberID(opts.Node), log: opts.Logger, peers: map[uint64]*peer{},
		names: map[string]Peer{}, inbound: map[net.Conn]struct{}{}, stop: make(chan struct{})}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if len(opts.Cluster) > maxName || len(opts.Node) > maxName {
		return nil, fmt.Errorf("cluster: cluster and node names are at most %d bytes", maxName)
	}
	ids := map[uint64]string{}
	for _, p := range opts.Peers {
		if _, dup := t.names[p.Name]; dup {
			return nil, fmt.Errorf("cluster: node %q is named twice", p.Name)
		}
		if other, dup := ids[MemberID(p.Name)]; dup {
			return nil, fmt.Errorf("cluster: nodes %q and %q have the same member id: rename one", other, p.Name)
		}
		if len(p.Name) == 0 || len(p.Name) > maxName {
			return nil, fmt.Errorf("cluster: node name %q must be 1 to %d bytes", p.Name, maxName)
		}
		ids[MemberID(p.Name)] = p.Name
		t.names[p.Name] = p
		if p.Name != opts.Node {
			t.peers[MemberID(p.Name)] = &peer{t: t, Peer: p, id: MemberID(p.Name), wake: make(chan struct{}, 1)}
		}
	}
	if _, ok := t.names[opts.Node]; !ok {
		return nil, fmt.Errorf("cluster: this node %q is not in the peer list", opts.Node)
	}
	return t, nil
}

// ID is this node's raft member id.
func (t *Transport) ID() uint64 { return t.self }

// Start starts dialling the peers. Serve accepts theirs.
func (t *Transport) Start() {
	for _, p := range t.peers {
		t.wg.Add(1)
		go p.run()
	}
}

// Serve accepts peers' connections on l until Close.
func (t *Transport) Serve(l net.Listener) error {
	if t.opts.TLS != nil {
		l = tls.NewListener(l, t.opts.TLS)
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		l.Close()
		return ErrClosed
	}
	t.lis = l
	t.wg.Add(1)
	t.mu.Unlock()
	defer t.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			select {
			case <-t.stop:
				return ErrClosed
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			c.Close()
			return ErrClosed
		}
		t.inbound[c] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go t.serveConn(c)
	}
}

// Close stops dialling and accepting, closes every connection and waits
// for the transport's goroutines.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	t.closed = true
	close(t.stop)
	if t.lis != nil {
		t.lis.Close()
	}
	for c := range t.inbound {
		c.Close()
	}
	t.mu.Unlock()
	for _, p := range t.peers {
		p.mu.Lock()
		if p.conn != nil {
			p.conn.Close()
		}
		p.mu.Unlock()
	}
	t.wg.Wait()
	return nil
}

// Send queues messages of group for their peers: quorum.Transport. It never
// blocks; a message for a peer that is not connected, or whose queue is
// full, is reported unreachable at once.
func (t *Transport) Send(group uint64, msgs []pb.Message) {
	for i := range msgs {
		m := &msgs[i]
		p := t.peers[m.To]
		if p == nil || !p.enqueue(group, m) {
			t.opts.Handler.ReportUnreachable(group, m.To)
			if m.Type == pb.MsgSnap {
				t.opts.Handler.ReportSnapshot(group, m.To, false)
			}
		}
	}
}

// sent is what a queued message must report once its batch is written or
// lost.
type sent struct {
	group uint64
	snap  bool
}

// peer is the outbound side of one peer: a queue and the goroutine that
// dials it and writes the queue out in batches.
type peer struct {
	Peer
	t    *Transport
	id   uint64
	wake chan struct{} // capacity 1: the queue has something

	mu    sync.Mutex // guards conn, up, buf, spare, count, meta
	conn  net.Conn   // the current connection, for Close
	up    bool       // connected and handshaken: Send queues
	buf   []byte     // encoded messages, without the frame header
	spare []byte     // the buffer being written, back for reuse
	count int
	meta  []sent
}

func (p *peer) enqueue(group uint64, m *pb.Message) bool {
	size := m.Size()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.up || len(p.buf)+size > p.t.opts.MaxPending {
		return false
	}
	p.buf = binary.AppendUvarint(p.buf, group)
	p.buf = binary.AppendUvarint(p.buf, uint64(size))
	n := len(p.buf)
	p.buf = append(p.buf, make([]byte, size)...)
	if _, err := m.MarshalTo(p.buf[n:]); err != nil {
		p.buf = p.buf[:n]
		return false
	}
	p.count++
	p.meta = append(p.meta, sent{group: group, snap: m.Type == pb.MsgSnap})
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return true
}

// run dials the peer, then writes batches until the connection fails, and
// again, with backoff, until the transport closes.
func (p *peer) run() {
	defer p.t.wg.Done()
	backoff := p.t.opts.MinBackoff
	failing := false // logged the current outage already
	for {
		c, err := p.dial()
		if err != nil {
			if !failing {
				p.t.log.Warn("cluster: cannot reach peer; retrying", "peer", p.Name, "addr", p.Addr, "error", err)
				failing = true
			}
			select {
			case <-p.t.stop:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, p.t.opts.MaxBackoff)
			continue
		}
		p.t.log.Info("cluster: connected to peer", "peer", p.Name, "addr", p.Addr)
		failing, backoff = false, p.t.opts.MinBackoff
		err = p.write(c)
		select {
		case <-p.t.stop:
			return
		default:
		}
		p.t.log.Warn("cluster: connection to peer lost; reconnecting", "peer", p.Name, "addr", p.Addr, "error", err)
	}
}

func (p *peer) dial() (net.Conn, error) {
	d := net.Dialer{Timeout: handshakeTimeout}
	c, err := d.Dial("tcp", p.Addr)
	if err != nil {
		return nil, err
	}
	if p.t.opts.TLS != nil {
		cfg := p.t.opts.TLS.Clone()
		if cfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(p.Addr)
			cfg.ServerName = host
		}
		c = tls.Client(c, cfg)
	}
	p.mu.Lock()
	select {
	case <-p.t.stop:
		p.mu.Unlock()
		c.Close()
		return nil, ErrClosed
	default:
	}
	p.conn = c
	p.mu.Unlock()
	if err := p.t.handshakeDial(c, p.Peer); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// write sends the queue in frames until the connection fails.
func (p *peer) write(c net.Conn) error {
	p.mu.Lock()
	p.up = true
	p.mu.Unlock()
	var frame []byte
	var meta []sent
	for {
		select {
		case <-p.t.stop:
			c.Close()
			return ErrClosed
		case <-p.wake:
		}
		p.mu.Lock()
		body, count := p.buf, p.count
		meta = append(meta[:0], p.meta...)
		p.buf, p.count, p.meta = p.spare[:0], 0, p.meta[:0]
		p.spare = nil
		p.mu.Unlock()
		if count == 0 {
			continue
		}
		frame = frame[:0]
		frame = binary.BigEndian.AppendUint32(frame, 0)
		frame = binary.AppendUvarint(frame, uint64(count))
		frame = append(frame, body...)
		binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
		c.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, err := c.Write(frame)
		p.mu.Lock()
		if cap(body) <= 4<<20 {
			p.spare = body // a snapshot's large buffer is not kept
		}
		p.mu.Unlock()
		for _, s := range meta {
			if err != nil {
				p.t.opts.Handler.ReportUnreachable(s.group, p.id)
			}
			if s.snap {
				p.t.opts.Handler.ReportSnapshot(s.group, p.id, err == nil)
			}
		}
		if err != nil {
			p.down(c)
			return err
		}
	}
}

// down closes the connection and drops what is queued, reporting it.
func (p *peer) down(c net.Conn) {
	c.Close()
	p.mu.Lock()
	p.up = false
	p.conn = nil
	meta := append([]sent(nil), p.meta...)
	p.buf, p.count, p.meta = nil, 0, nil
	p.mu.Unlock()
	for _, s := range meta {
		p.t.opts.Handler.ReportUnreachable(s.group, p.id)
		if s.snap {
			p.t.opts.Handler.ReportSnapshot(s.group, p.id, false)
		}
	}
}

// serveConn handshakes an inbound connection and hands its messages over.
func (t *Transport) serveConn(c net.Conn) {
	defer t.wg.Done()
	defer func() {
		c.Close()
		t.mu.Lock()
		delete(t.inbound, c)
		t.mu.Unlock()
	}()
	from, err := t.handshakeAccept(c)
	if err != nil {
		t.log.Warn("cluster: refused a node", "remote", c.RemoteAddr().String(), "error", err)
		return
	}
	fromID := MemberID(from)
	r := &frameReader{r: c}
	for {
		body, err := r.next()
		if err != nil {
			select {
			case <-t.stop:
			default:
				if !errors.Is(err, io.EOF) {
					t.log.Warn("cluster: connection from peer lost", "peer", from, "error", err)
				}
			}
			return
		}
		if err := t.deliver(fromID, body); err != nil {
			t.log.Warn("cluster: bad frame from peer; closing its connection", "peer", from, "error", err)
			return
		}
	}
}

// deliver decodes a batch and steps its messages. A message must come
// from the node that authenticated and be for this one: a member cannot
// speak for another.
func (t *Transport) deliver(from uint64, body []byte) error {
	count, n := binary.Uvarint(body)
	if n <= 0 {
		return errors.New("bad message count")
	}
	body = body[n:]
	for i := uint64(0); i < count; i++ {
		group, n := binary.Uvarint(body)
		if n <= 0 {
			return errors.New("bad group")
		}
		body = body[n:]
		size, n := binary.Uvarint(body)
		if n <= 0 || size > uint64(len(body)-n) {
			return errors.New("bad message length")
		}
		body = body[n:]
		var m pb.Message
		if err := m.Unmarshal(body[:size]); err != nil {
			return fmt.Errorf("message: %w", err)
		}
		body = body[size:]
		if m.From != from || m.To != t.self {
			return fmt.Errorf("message from %d to %d on the connection of %d to %d", m.From, m.To, from, t.self)
		}
		_ = t.opts.Handler.Step(group, m)
	}
	if len(body) != 0 {
		return errors.New("trailing bytes")
	}
	return nil
}

// frameReader reads length-prefixed frames into a reused buffer.
type frameReader struct {
	r   io.Reader
	hdr [4]byte
	buf []byte
}

func (f *frameReader) next() ([]byte, error) {
	if _, err := io.ReadFull(f.r, f.hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(f.hdr[:])
	if n == 0 || n > maxFrame {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	if cap(f.buf) < int(n) {
		f.buf = make([]byte, n)
	}
	b := f.buf[:n]
	if _, err := io.ReadFull(f.r, b); err != nil {
		return nil, err
	}
	return b, nil
}
