package quorum

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/raft/v3/raftpb"
)

// loopback is a Transport between nodes of one process: it steps each
// message into its destination at once, unless that node is cut off.
type loopback struct {
	mu    sync.Mutex // guards nodes, cut
	nodes map[uint64]*Node
	cut   map[uint64]bool
}

func (l *loopback) Send(group uint64, msgs []pb.Message) {
	for _, m := range msgs {
		l.mu.Lock()
		to, down := l.nodes[m.To], l.cut[m.To] || l.cut[m.From]
		from := l.nodes[m.From]
		l.mu.Unlock()
		if to == nil || down {
			if from != nil {
				from.ReportUnreachable(group, m.To)
				if m.Type == pb.MsgSnap {
					from.ReportSnapshot(group, m.To, false)
				}
			}
			continue
		}
		_ = to.Step(group, m)
		if m.Type == pb.MsgSnap && from != nil {
			from.ReportSnapshot(group, m.To, true)
		}
	}
}

func (l *loopback) setCut(id uint64, cut bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut[id] = cut
}

func leaderOf(nodes map[uint64]*Node, group uint64, skip uint64) uint64 {
	for id, n := range nodes {
		if id == skip {
			continue
		}
		if g := n.Group(group); g != nil && g.Leader() == id {
			return id
		}
	}
	return 0
}

// TestThreeMembers: a group of three nodes elects a leader, commits
// proposals made on any member (followers forward them), delivers on every
// member, and elects another leader when the first is cut off.
func TestThreeMembers(t *testing.T) {
	tr := &loopback{nodes: map[uint64]*Node{}, cut: map[uint64]bool{}}
	dels := map[uint64]*deliveries{}
	for id := uint64(1); id <= 3; id++ {
		d := newDeliveries()
		n, err := OpenNode(NodeOptions{Dir: t.TempDir(), Tick: 10 * time.Millisecond, ID: id, Transport: tr, Effects: d.effects,
			LocalPid: func(pid uint64) bool { return pid == id }})
		require.NoError(t, err)
		t.Cleanup(func() { n.Close() })
		tr.mu.Lock()
		tr.nodes[id] = n
		tr.mu.Unlock()
		dels[id] = d
		_, err = n.CreateMembers(7, Config{}, []uint64{1, 2, 3})
		require.NoError(t, err)
	}
	_, err := tr.nodes[1].CreateMembers(8, Config{}, []uint64{2, 3})
	require.ErrorContains(t, err, "do not include this node")

	// Proposals go through followers once all three know the leader: one
	// forwarded to a member that has lost the lead is dropped.
	var lead uint64
	require.Eventually(t, func() bool {
		lead = leaderOf(tr.nodes, 7, 0)
		for _, n := range tr.nodes {
			if n.Group(7).Leader() != lead {
				return false
			}
		}
		return lead != 0
	}, 30*time.Second, 10*time.Millisecond)
	// A consumer on node 2; publishes through every node.
	c := ConsumerID{Pid: 2, Tag: "c"}
	proposeAll(t, tr.nodes[2].Group(7), []Command{{Type: CmdCheckout, Consumer: c}})
	for id := uint64(1); id <= 3; id++ {
		proposeAll(t, tr.nodes[id].Group(7), []Command{{Type: CmdEnqueue, Body: []byte{byte(id)}}})
	}
	// Every member applies the same log: each one computes the deliveries.
	for id := uint64(1); id <= 3; id++ {
		require.Eventually(t, func() bool { return dels[id].count(c) == 3 }, 30*time.Second, 5*time.Millisecond, "node %d", id)
	}

	tr.setCut(lead, true)
	var next uint64
	require.Eventually(t, func() bool { next = leaderOf(tr.nodes, 7, lead); return next != 0 }, 30*time.Second, 10*time.Millisecond)
	require.NotEqual(t, lead, next)
	proposeAll(t, tr.nodes[next].Group(7), []Command{{Type: CmdEnqueue, Body: []byte("after")}})
	tr.setCut(lead, false)
	require.Eventually(t, func() bool { return dels[lead].count(c) == 4 }, 10*time.Second, 5*time.Millisecond, "the old leader catches up")
}
