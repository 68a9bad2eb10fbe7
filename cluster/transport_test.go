package cluster

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/raft/v3/raftpb"
)

// recorder is a Handler that keeps what it is given.
type recorder struct {
	mu          sync.Mutex // guards steps, unreachable, snaps
	steps       []pb.Message
	groups      []uint64
	unreachable int
	snaps       map[bool]int
}

func (r *recorder) Step(group uint64, m pb.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, m)
	r.groups = append(r.groups, group)
	return nil
}

func (r *recorder) ReportUnreachable(group, member uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unreachable++
}

func (r *recorder) ReportSnapshot(group, member uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.snaps == nil {
		r.snaps = map[bool]int{}
	}
	r.snaps[ok]++
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.steps)
}

// logBuffer collects log lines.
type logBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type node struct {
	t   *Transport
	h   *recorder
	log *logBuffer
	lis net.Listener
}

// listeners reserves an address per name.
func listeners(t *testing.T, names ...string) ([]net.Listener, []Peer) {
	var ls []net.Listener
	var peers []Peer
	for _, n := range names {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ls = append(ls, l)
		peers = append(peers, Peer{Name: n, Addr: l.Addr().String()})
	}
	return ls, peers
}

func start(t *testing.T, opts Options, l net.Listener) *node {
	t.Helper()
	n := &node{h: &recorder{}, log: &logBuffer{}, lis: l}
	opts.Handler = n.h
	opts.Logger = slog.New(slog.NewTextHandler(n.log, nil))
	opts.MinBackoff, opts.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	tr, err := New(opts)
	require.NoError(t, err)
	n.t = tr
	done := make(chan struct{})
	go func() { defer close(done); tr.Serve(l) }()
	tr.Start()
	t.Cleanup(func() { tr.Close(); <-done })
	return n
}

func msg(from, to string, typ pb.MessageType, index uint64) pb.Message {
	return pb.Message{Type: typ, From: MemberID(from), To: MemberID(to), Index: index,
		Entries: []pb.Entry{{Index: index, Term: 1, Data: []byte("payload")}}}
}

// TestTransportDelivers: messages of several groups reach their peers in
// order, with their groups, over one connection per direction.
func TestTransportDelivers(t *testing.T) {
	ls, peers := listeners(t, "a", "b")
	base := Options{Cluster: "c1", Peers: peers, Secret: []byte("s3cret")}
	a, b := base, base
	a.Node, b.Node = "a", "b"
	na, nb := start(t, a, ls[0]), start(t, b, ls[1])
	// Until connected, Send reports the peer unreachable.
	require.Eventually(t, func() bool {
		nb.t.peers[MemberID("a")].mu.Lock()
		defer nb.t.peers[MemberID("a")].mu.Unlock()
		return nb.t.peers[MemberID("a")].up
	}, 5*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		p := na.t.peers[MemberID("b")]
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.up
	}, 5*time.Second, 5*time.Millisecond)

	const n = 1000
	for i := uint64(1); i <= n; i++ {
		na.t.Send(i%7, []pb.Message{msg("a", "b", pb.MsgApp, i)})
	}
	nb.t.Send(3, []pb.Message{msg("b", "a", pb.MsgAppResp, 1), {Type: pb.MsgSnap, From: MemberID("b"), To: MemberID("a"),
		Snapshot: &pb.Snapshot{Data: []byte("snap"), Metadata: pb.SnapshotMetadata{Index: 5, Term: 1}}}})
	require.Eventually(t, func() bool { return nb.h.count() == n }, 5*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return na.h.count() == 2 }, 5*time.Second, 5*time.Millisecond)
	nb.h.mu.Lock()
	for i, m := range nb.h.steps {
		require.Equal(t, uint64(i+1), m.Index, "in order")
		require.Equal(t, m.Index%7, nb.h.groups[i])
		require.Equal(t, "payload", string(m.Entries[0].Data))
	}
	nb.h.mu.Unlock()
	na.h.mu.Lock()
	require.Equal(t, "snap", string(na.h.steps[1].Snapshot.Data))
	na.h.mu.Unlock()
	nb.h.mu.Lock()
	require.Equal(t, 1, nb.h.snaps[true], "a written snapshot is reported")
	nb.h.mu.Unlock()
	// Messages to a member not in the list are unreachable.
	na.t.Send(1, []pb.Message{{Type: pb.MsgApp, From: MemberID("a"), To: MemberID("zz")}})
	na.h.mu.Lock()
	require.Equal(t, 1, na.h.unreachable)
	na.h.mu.Unlock()
}

// TestTransportReconnects: a peer that goes away and comes back at the
// same address is dialled again and gets messages sent after.
func TestTransportReconnects(t *testing.T) {
	ls, peers := listeners(t, "a", "b")
	addrB := peers[1].Addr
	base := Options{Cluster: "c1", Peers: peers, Secret: []byte("s3cret")}
	a, b := base, base
	a.Node, b.Node = "a", "b"
	na := start(t, a, ls[0])
	nb := start(t, b, ls[1])
	send := func() { na.t.Send(1, []pb.Message{msg("a", "b", pb.MsgHeartbeat, 0)}) }
	require.Eventually(t, func() bool { send(); return nb.h.count() > 0 }, 5*time.Second, 10*time.Millisecond)
	nb.t.Close()
	require.Eventually(t, func() bool { send(); return strings.Contains(na.log.String(), "connection to peer lost") }, 5*time.Second, 10*time.Millisecond)
	l, err := net.Listen("tcp", addrB)
	require.NoError(t, err)
	nb2 := start(t, b, l)
	require.Eventually(t, func() bool { send(); return nb2.h.count() > 0 }, 5*time.Second, 10*time.Millisecond)
}

// TestHandshakeRefusals: each bad pairing is refused, and logged with
// its reason on the side that can tell.
func TestHandshakeRefusals(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(a, b *Options) // a dials b
		aLog     string              // the dialler's log says
		bLog     string              // the acceptor's log says
		bPeerFor string              // the name a's list gives b's address
	}{
		{name: "wrong secret", mutate: func(a, b *Options) { a.Secret = []byte("other") },
			aLog: `peer \"b\" failed authentication: its cluster secret differs`, bLog: `node \"a\" hung up during the handshake (its cluster secret differs?)`},
		{name: "other cluster", mutate: func(a, b *Options) { a.Cluster = "c2" },
			aLog: `refused this node: cluster name \"c2\" differs from this node's \"c1\"`, bLog: `cluster name \"c2\" differs`},
		{name: "not in the acceptor's list", mutate: func(a, b *Options) { b.Peers = []Peer{b.Peers[1], {Name: "x", Addr: "127.0.0.1:1"}} },
			aLog: `node \"a\" is not in cluster.peers of node \"b\"`, bLog: `node \"a\" is not in cluster.peers`},
		{name: "another node at the address", mutate: func(a, b *Options) { a.Peers[1].Name = "c" },
			aLog: `the node at 127.0.0.1:`, bLog: `node \"a\" hung up`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls, peers := listeners(t, "a", "b")
			a := Options{Cluster: "c1", Node: "a", Peers: append([]Peer{}, peers...), Secret: []byte("s3cret")}
			b := Options{Cluster: "c1", Node: "b", Peers: append([]Peer{}, peers...), Secret: []byte("s3cret")}
			tt.mutate(&a, &b)
			na, nb := start(t, a, ls[0]), start(t, b, ls[1])
			require.Eventually(t, func() bool {
				return strings.Contains(na.log.String(), tt.aLog) && strings.Contains(nb.log.String(), tt.bLog)
			}, 5*time.Second, 10*time.Millisecond, "a: %s\nb: %s", na.log.String(), nb.log.String())
			// Nothing gets through.
			for _, p := range na.t.peers {
				na.t.Send(1, []pb.Message{{Type: pb.MsgHeartbeat, From: MemberID("a"), To: p.id}})
			}
			time.Sleep(50 * time.Millisecond)
			require.Zero(t, nb.h.count())
		})
	}
}

// TestNewChecks: bad options are refused with a reason.
func TestNewChecks(t *testing.T) {
	h := &recorder{}
	tests := []struct {
		name string
		opts Options
		err  string
	}{
		{"no secret", Options{Node: "a", Peers: []Peer{{"a", ":1"}}, Handler: h}, "secret is required"},
		{"self missing", Options{Node: "a", Peers: []Peer{{"b", ":1"}}, Secret: []byte("s"), Handler: h}, `"a" is not in the peer list`},
		{"twice", Options{Node: "a", Peers: []Peer{{"a", ":1"}, {"a", ":2"}}, Secret: []byte("s"), Handler: h}, `"a" is named twice`},
		{"empty name", Options{Node: "a", Peers: []Peer{{"a", ":1"}, {"", ":2"}}, Secret: []byte("s"), Handler: h}, `must be 1 to 255 bytes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			require.ErrorContains(t, err, tt.err)
		})
	}
}

// selfSigned makes a certificate for 127.0.0.1 that is its own CA.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "warren node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// TestTransportTLS: nodes with mutual TLS talk; a node without TLS is not
// let in.
func TestTransportTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}
	ls, peers := listeners(t, "a", "b", "plain")
	base := Options{Cluster: "c1", Peers: peers, Secret: []byte("s3cret"), TLS: cfg}
	a, b, plain := base, base, base
	a.Node, b.Node, plain.Node, plain.TLS = "a", "b", "plain", nil
	na, nb := start(t, a, ls[0]), start(t, b, ls[1])
	np := start(t, plain, ls[2])
	require.Eventually(t, func() bool {
		na.t.Send(1, []pb.Message{msg("a", "b", pb.MsgHeartbeat, 0)})
		return nb.h.count() > 0
	}, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		np.t.Send(1, []pb.Message{msg("plain", "b", pb.MsgHeartbeat, 0)})
		return strings.Contains(nb.log.String(), "refused a node")
	}, 5*time.Second, 10*time.Millisecond)
	require.Zero(t, func() int {
		nb.h.mu.Lock()
		defer nb.h.mu.Unlock()
		n := 0
		for _, m := range nb.h.steps {
			if m.From == MemberID("plain") {
				n++
			}
		}
		return n
	}())
}
