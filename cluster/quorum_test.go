package cluster

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/warrenmq/warren/quorum"
	pb "go.etcd.io/raft/v3/raftpb"
)

// TestQuorumOverTCP: three quorum nodes, each with its own transport on
// loopback, form one group, elect a leader with raft's default ticks,
// and commit publishes made on every node.
func TestQuorumOverTCP(t *testing.T) {
	ls, peers := listeners(t, "a", "b", "c")
	var delivered [3]atomic.Int64
	nodes := make([]*quorum.Node, 3)
	members := []uint64{MemberID("a"), MemberID("b"), MemberID("c")}
	start := time.Now()
	for i, p := range peers {
		h := &lateHandler{}
		tr, err := New(Options{Cluster: "c1", Node: p.Name, Peers: peers, Secret: []byte("s3cret"), Handler: h,
			MinBackoff: 10 * time.Millisecond})
		require.NoError(t, err)
		n, err := quorum.OpenNode(quorum.NodeOptions{Dir: t.TempDir(), ID: tr.ID(), Transport: tr,
			Effects: func(_ uint64, effs []quorum.Effect) { delivered[i].Add(int64(len(effs))) }})
		require.NoError(t, err)
		h.n.Store(n)
		nodes[i] = n
		l := ls[i]
		done := make(chan struct{})
		go func() { defer close(done); tr.Serve(l) }()
		tr.Start()
		t.Cleanup(func() { tr.Close(); <-done; n.Close() })
		_, err = n.CreateMembers(9, quorum.Config{}, members)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return nodes[0].Group(9).Leader() != 0 }, 10*time.Second, 10*time.Millisecond)
	t.Logf("leader elected %v after start (default ticks)", time.Since(start).Round(time.Millisecond))
	errs := make(chan error, 3)
	for i, n := range nodes {
		require.NoError(t, n.Group(9).Propose(&quorum.Command{Type: quorum.CmdCheckout, Consumer: quorum.ConsumerID{Pid: uint64(i + 1), Tag: "c"}}, nil))
	}
	for _, n := range nodes {
		require.NoError(t, n.Group(9).Propose(&quorum.Command{Type: quorum.CmdEnqueue, Body: []byte("m")}, func(r quorum.Result, err error) { errs <- err }))
	}
	for range nodes {
		select {
		case err := <-errs:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("publish not confirmed")
		}
	}
	for i := range nodes {
		require.Eventually(t, func() bool { return delivered[i].Load() == 3 }, 5*time.Second, 5*time.Millisecond, "node %d", i)
	}
}

// lateHandler forwards to a node made after the transport.
type lateHandler struct{ n atomic.Pointer[quorum.Node] }

func (h *lateHandler) Step(group uint64, m pb.Message) error { return h.n.Load().Step(group, m) }
func (h *lateHandler) ReportUnreachable(group, member uint64) {
	h.n.Load().ReportUnreachable(group, member)
}
func (h *lateHandler) ReportSnapshot(group, member uint64, ok bool) {
	h.n.Load().ReportSnapshot(group, member, ok)
}
