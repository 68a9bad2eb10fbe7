package quorum

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/raft/v3/raftpb"
)

// The deterministic simulation of the clustering issue: three Nodes in one
// process, each on its own WAL, driven step by step by the test goroutine
// (no node goroutines), over a simulated network that loses, delays,
// duplicates and reorders messages and partitions nodes, while nodes crash
// (losing whatever their WAL had not made durable) and restart. Everything
// random, raft's election timeouts included (crypto/rand, made
// deterministic by cryptotest.SetGlobalRandom), comes from the seed, so a
// failing seed fails the same way again:
//
//	go test ./quorum/ -run 'TestSimulation$' -v -args -sim.seed=N
//
// WARREN_SIM_SEEDS=N (or -sim.seeds) runs N seeds; the default is a few
// for every `go test`, more without -short.

const simGroup = 1

// simTransport is one node's way into the simulated network.
type simTransport struct {
	s    *sim
	from uint64
}

func (t simTransport) Send(group uint64, msgs []pb.Message) {
	for _, m := range msgs {
		t.s.send(group, m)
	}
}

// simMsg is a message in flight.
type simMsg struct {
	at    int // step it arrives at
	order uint64
	group uint64
	m     pb.Message
}

type simNode struct {
	id          uint64
	dir         string
	n           *Node // nil while crashed
	incarnation uint64
	settles     map[uint64]map[uint64]bool // pid -> msg ids delivered, not yet known settled
}

// simConsumer is one consumer's record: what it was delivered, in order.
type simConsumer struct {
	pid        uint64
	node       uint64
	registered bool        // its checkout is known applied
	down       bool        // known gone from the queue
	first      [][2]uint64 // (publisher, seq) of first deliveries, in order
}

type sim struct {
	t    testing.TB
	seed uint64
	rng  *rand.Rand
	step int

	nodes    [4]*simNode // 1..3
	inflight []simMsg
	order    uint64
	side     [4]int // partition side of each node; messages cross no side
	loss     float64
	dup      float64
	maxDelay int
	lastProp [4][4]int // arrival step of the last proposal forwarded from a node to another
	chaos    string    // the network's settings, for the failure message

	published [4]uint64          // next seq of publisher p (publishes through node p)
	confirmed map[[2]uint64]bool // (p, seq) confirmed
	delivered map[[2]uint64]int  // (p, seq) -> deliveries seen
	consumers map[uint64]*simConsumer
	current   uint64 // pid of the consumer the sim keeps alive
	nextPid   uint64
	failure   string // first invariant broken

	// Measurements.
	leaderLost  int // step the leader crashed or was cut off, or -1
	lostLeader  uint64
	elections   []int // steps from losing a leader to a new one
	commits     int
	crashes     int
	partitions  int
	snapsSent   int
	leaderTerms int
}

func simBody(p, seq uint64) []byte {
	b := binary.BigEndian.AppendUint64(nil, p)
	return binary.BigEndian.AppendUint64(b, seq)
}

func (s *sim) fail(format string, args ...any) {
	if s.failure == "" {
		s.failure = fmt.Sprintf("step %d: ", s.step) + fmt.Sprintf(format, args...)
	}
}

func (s *sim) send(group uint64, m pb.Message) {
	if m.Type == pb.MsgSnap {
		s.snapsSent++
	}
	// Raft copes with anything the network does to its own messages; a
	// proposal a follower forwards is the application's, and the transport
	// keeps those in order and never duplicates them (one TCP connection
	// per peer), or a publisher's messages could be enqueued out of order
	// or twice.
	prop := m.Type == pb.MsgProp
	copies := 1
	if !prop && s.rng.Float64() < s.dup {
		copies = 2
	}
	for i := 0; i < copies; i++ {
		if s.rng.Float64() < s.loss {
			s.undeliverable(group, m)
			continue
		}
		at := s.step + 1 + s.rng.IntN(s.maxDelay)
		if prop {
			at = max(at, s.lastProp[m.From][m.To])
			s.lastProp[m.From][m.To] = at
		}
		s.order++
		s.inflight = append(s.inflight, simMsg{at: at, order: s.order, group: group, m: m})
	}
}

// undeliverable is what a transport reports when it cannot get m there.
func (s *sim) undeliverable(group uint64, m pb.Message) {
	if from := s.nodes[m.From]; from.n != nil {
		from.n.ReportUnreachable(group, m.To)
		if m.Type == pb.MsgSnap {
			from.n.ReportSnapshot(group, m.To, false)
		}
	}
}

func (s *sim) open(sn *simNode) {
	sn.incarnation++
	id := sn.id
	n, err := OpenNode(NodeOptions{
		Dir: sn.dir, SegmentSize: 64 << 10, ID: id,
		Transport: simTransport{s: s, from: id},
		Effects:   func(group uint64, effs []Effect) { s.effects(sn, effs) },
		LocalPid:  func(pid uint64) bool { return pid>>32 == id },
		manual:    true,
		seqBase:   sn.incarnation << 40,
	})
	require.NoError(s.t, err, "seed %d: node %d: open", s.seed, id)
	sn.n = n
	sn.settles = map[uint64]map[uint64]bool{}
}

// crash stops a node as a power cut would: its WAL loses what was not
// durable, proposals in flight never hear back.
func (s *sim) crash(sn *simNode) {
	n := sn.n
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	close(n.stop)
	n.wg.Wait()
	if err := n.wal.Abandon(); err != nil {
		s.fail("node %d: abandon: %v", sn.id, err)
	}
	sn.n = nil
	s.crashes++
}

func (s *sim) effects(sn *simNode, effs []Effect) {
	for _, e := range effs {
		if e.Type != EffDeliver {
			continue
		}
		c := s.consumers[e.Consumer.Pid]
		// Only the node hosting a consumer acts on its deliveries, and
		// only for consumers of its current life.
		if c == nil || c.node != sn.id || e.Consumer.Pid>>32 != sn.id || (e.Consumer.Pid>>24)&0xff != sn.incarnation&0xff {
			continue
		}
		if len(e.Body) != 16 {
			snap, _ := sn.n.Group(simGroup).store.Snapshot()
			s.fail("consumer %x got a body of %d bytes: %x (message index %d, delivery count %d, node %d snapshot at %d, applied %d)", c.pid, len(e.Body), e.Body, e.Index, e.DeliveryCount, sn.id, snap.Metadata.Index, sn.n.Group(simGroup).sm.Applied())
			continue
		}
		p, seq := binary.BigEndian.Uint64(e.Body), binary.BigEndian.Uint64(e.Body[8:])
		key := [2]uint64{p, seq}
		if p < 1 || p > 3 || seq >= s.published[p] {
			s.fail("consumer %x got message %v that was never published", c.pid, key)
			continue
		}
		s.delivered[key]++
		if e.DeliveryCount == 0 {
			for _, f := range c.first {
				if f[0] == p && f[1] >= seq {
					s.fail("consumer %x: publisher %d's message %d delivered after %d (FIFO)", c.pid, p, seq, f[1])
				}
			}
			for _, other := range s.consumers {
				if other != c && slices.Contains(other.first, key) {
					s.fail("message %v first-delivered to %x and %x", key, other.pid, c.pid)
				}
			}
			if slices.Contains(c.first, key) {
				s.fail("message %v first-delivered twice to %x", key, c.pid)
			}
			c.first = append(c.first, key)
		}
		if sn.settles[c.pid] == nil {
			sn.settles[c.pid] = map[uint64]bool{}
		}
		sn.settles[c.pid][e.MsgID] = true
	}
}

func (s *sim) up(id uint64) bool { return s.nodes[id].n != nil }

// leader is the member a majority of up nodes follows, or 0.
func (s *sim) leader() uint64 {
	var votes [4]int
	for id := uint64(1); id <= 3; id++ {
		if s.up(id) {
			if l := s.nodes[id].n.Group(simGroup).Leader(); l != 0 && s.up(l) && s.side[l] == s.side[id] {
				votes[l]++
			}
		}
	}
	for id := uint64(1); id <= 3; id++ {
		if votes[id] >= 2 && s.nodes[id].n.Group(simGroup).Leader() == id {
			return id
		}
	}
	return 0
}

func (s *sim) publish(p uint64) {
	g := s.nodes[p].n.Group(simGroup)
	seq := s.published[p]
	s.published[p]++
	key := [2]uint64{p, seq}
	err := g.Propose(&Command{Type: CmdEnqueue, Body: simBody(p, seq)}, func(r Result, err error) {
		if err == nil && r.Err == nil && !r.Rejected {
			s.confirmed[key] = true
			s.commits++
		}
	})
	if err != nil {
		s.fail("propose: %v", err)
	}
}

func (s *sim) newConsumer(sn *simNode) {
	s.nextPid++
	pid := sn.id<<32 | (sn.incarnation&0xff)<<24 | s.nextPid
	s.consumers[pid] = &simConsumer{pid: pid, node: sn.id}
	s.current = pid
	s.checkout(sn, s.consumers[pid])
}

// checkout proposes (again) a consumer's checkout: a proposal forwarded to
// a leader that is lost on the way is never answered, so the client asks
// again until it hears back (a second checkout is refused as a duplicate).
func (s *sim) checkout(sn *simNode, c *simConsumer) {
	_ = sn.n.Group(simGroup).Propose(&Command{Type: CmdCheckout, Consumer: ConsumerID{Pid: c.pid, Tag: "c"}, Prefetch: 32}, func(r Result, err error) {
		if err == nil && (r.Err == nil || r.Err == ErrConsumerExists) {
			c.registered = true
		}
	})
}

// downs proposes, through any up node, the end of consumers whose node
// restarted: the node does so itself when it opens, but that proposal may
// be lost like any other, and watching nodes go down is the cluster's job
// (the broker's, next), not the queue's.
func (s *sim) downs() {
	for _, c := range s.consumers {
		if c.down || (s.up(c.node) && s.nodes[c.node].incarnation&0xff == (c.pid>>24)&0xff) {
			continue
		}
		if !s.up(c.node) {
			continue // it may still come back with its messages in the log
		}
		sn := s.nodes[c.node]
		_ = sn.n.Group(simGroup).Propose(&Command{Type: CmdDown, Pid: c.pid}, func(r Result, err error) {
			if err == nil {
				c.down = true
			}
		})
	}
}

// settle proposes the settlement of what a node's consumers were
// delivered, every few steps until it is known applied (a lost proposal is
// never answered; settling twice is a no-op).
func (s *sim) settle(sn *simNode) {
	for _, pid := range slices.Sorted(maps.Keys(sn.settles)) {
		set := sn.settles[pid]
		if len(set) == 0 {
			continue
		}
		ids := slices.Sorted(maps.Keys(set))
		_ = sn.n.Group(simGroup).Propose(&Command{Type: CmdSettle, Consumer: ConsumerID{Pid: pid, Tag: "c"}, MsgIDs: ids}, func(r Result, err error) {
			if err == nil {
				for _, id := range ids {
					delete(set, id)
				}
			}
		})
	}
}

// tick runs one step: messages due arrive, every up node ticks and runs
// its Ready rounds.
func (s *sim) tick() {
	s.step++
	slices.SortFunc(s.inflight, func(a, b simMsg) int {
		if a.at != b.at {
			return a.at - b.at
		}
		return int(a.order - b.order)
	})
	i := 0
	for ; i < len(s.inflight) && s.inflight[i].at <= s.step; i++ {
		m := s.inflight[i]
		to := s.nodes[m.m.To]
		if to.n == nil || s.side[m.m.From] != s.side[m.m.To] {
			s.undeliverable(m.group, m.m)
			continue
		}
		_ = to.n.Step(m.group, m.m)
		if m.m.Type == pb.MsgSnap {
			if from := s.nodes[m.m.From]; from.n != nil {
				from.n.ReportSnapshot(m.group, m.m.To, true)
			}
		}
	}
	s.inflight = slices.Delete(s.inflight, 0, i)
	for id := uint64(1); id <= 3; id++ {
		if sn := s.nodes[id]; sn.n != nil {
			sn.n.tick()
			if err := sn.n.cycle(); err != nil {
				s.fail("node %d: %v", id, err)
			}
		}
	}
	s.observeLeader()
}

func (s *sim) observeLeader() {
	l := s.leader()
	if s.leaderLost >= 0 && l != 0 {
		s.elections = append(s.elections, s.step-s.leaderLost)
		s.leaderLost = -1
	}
	if l != 0 {
		s.lostLeader = l
	}
}

// chaos makes this step's random faults.
func (s *sim) faults() {
	l := s.leader()
	for id := uint64(1); id <= 3; id++ {
		sn := s.nodes[id]
		switch {
		case sn.n != nil && s.rng.Float64() < 0.004:
			if id == l && s.leaderLost < 0 {
				s.leaderLost = s.step
			}
			s.crash(sn)
		case sn.n == nil && s.rng.Float64() < 0.03:
			s.open(sn)
		}
	}
	switch {
	case s.rng.Float64() < 0.005:
		// Cut one node off, or split the three some other way.
		s.side = [4]int{}
		s.side[1+s.rng.IntN(3)] = 1
		if l != 0 && s.side[l] == 1 && s.leaderLost < 0 {
			s.leaderLost = s.step
		}
		s.partitions++
	case s.rng.Float64() < 0.02:
		s.side = [4]int{}
	}
}

// work is the clients' part of a step: publishers publish, the consumer
// is replaced when its node is gone, deliveries are settled.
func (s *sim) work(publishing bool) {
	for p := uint64(1); p <= 3; p++ {
		if publishing && s.up(p) && s.rng.Float64() < 0.6 {
			s.publish(p)
		}
	}
	if c := s.consumers[s.current]; c == nil || !s.up(c.node) || s.nodes[c.node].incarnation&0xff != (c.pid>>24)&0xff {
		ups := []uint64{}
		for id := uint64(1); id <= 3; id++ {
			if s.up(id) {
				ups = append(ups, id)
			}
		}
		if len(ups) > 0 {
			s.newConsumer(s.nodes[ups[s.rng.IntN(len(ups))]])
		}
	}
	for id := uint64(1); id <= 3; id++ {
		if sn := s.nodes[id]; sn.n != nil {
			if s.step%4 == 0 {
				s.settle(sn)
			}
		}
	}
	if s.step%10 == 5 {
		if c := s.consumers[s.current]; c != nil && !c.registered && s.up(c.node) {
			s.checkout(s.nodes[c.node], c)
		}
		s.downs()
	}
}

func runSim(t testing.TB, seed uint64, steps int) *sim {
	s := &sim{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x5157)), leaderLost: -1,
		confirmed: map[[2]uint64]bool{}, delivered: map[[2]uint64]int{}, consumers: map[uint64]*simConsumer{}}
	s.loss = s.rng.Float64() * 0.1
	s.dup = s.rng.Float64() * 0.02
	s.maxDelay = 1 + s.rng.IntN(4)
	s.chaos = fmt.Sprintf("loss %.3f, dup %.3f, delay <= %d", s.loss, s.dup, s.maxDelay)
	for p := range s.published {
		s.published[p] = 0
	}
	base := os.Getenv("WARREN_SIM_DIR")
	if base == "" {
		// The WAL fsyncs every step: on tmpfs that costs nothing.
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			base = "/dev/shm"
		}
	}
	root, err := os.MkdirTemp(base, "warren-sim-")
	require.NoError(t, err)
	defer os.RemoveAll(root)
	for id := uint64(1); id <= 3; id++ {
		sn := &simNode{id: id, dir: fmt.Sprintf("%s/n%d", root, id)}
		s.nodes[id] = sn
		s.open(sn)
		_, err := sn.n.CreateMembers(simGroup, Config{}, []uint64{1, 2, 3})
		require.NoError(t, err)
	}
	defer func() {
		for _, sn := range s.nodes[1:] {
			if sn.n != nil {
				s.crash(sn)
			}
		}
	}()

	for s.step < steps && s.failure == "" {
		s.faults()
		s.work(true)
		s.tick()
	}
	// Heal: every node up, no partition, a reliable network; then the
	// cluster must deliver every confirmed message, and take new ones.
	s.side = [4]int{}
	s.loss, s.dup = 0, 0
	for _, sn := range s.nodes[1:] {
		if sn.n == nil {
			s.open(sn)
		}
	}
	healed := s.step
	for s.failure == "" {
		if s.step-healed > 3000 {
			missing := []string{}
			for k := range s.confirmed {
				if s.delivered[k] == 0 {
					missing = append(missing, fmt.Sprint(k))
				}
			}
			slices.Sort(missing)
			s.fail("3000 steps after healing: leader %d, consumer %x, %d confirmed messages undelivered: %v", s.leader(), s.current, len(missing), missing[:min(len(missing), 10)])
			break
		}
		s.work(false)
		s.tick()
		if s.step-healed < 50 || s.leader() == 0 {
			continue
		}
		missing := 0
		for k := range s.confirmed {
			if s.delivered[k] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
	}
	// A leader takes a new publish once healed.
	if s.failure == "" {
		before := s.commits
		for p := uint64(1); p <= 3; p++ {
			s.publish(p)
		}
		for i := 0; i < 200 && s.commits < before+3; i++ {
			s.work(false)
			s.tick()
		}
		if s.commits < before+3 {
			s.fail("publishes after healing were not confirmed")
		}
	}
	// Every member ends with the same state.
	if s.failure == "" {
		for i := 0; i < 100; i++ {
			s.tick()
		}
		var ref []byte
		var refApplied uint64
		for id := uint64(1); id <= 3; id++ {
			g := s.nodes[id].n.Group(simGroup)
			if id == 1 {
				ref, refApplied = g.sm.Snapshot(), g.sm.Applied()
				continue
			}
			if g.sm.Applied() != refApplied || !bytes.Equal(g.sm.Snapshot(), ref) {
				s.fail("node %d's state (applied %d) differs from node 1's (applied %d)", id, g.sm.Applied(), refApplied)
			}
		}
	}
	return s
}

var (
	simSeed  = flagUint("sim.seed", 0, "run only this simulation seed")
	simSeeds = flagUint("sim.seeds", 0, "simulation seeds to run (default WARREN_SIM_SEEDS, else 8, or 3 with -short)")
)

func TestSimulation(t *testing.T) {
	seeds := []uint64{}
	switch {
	case *simSeed != 0:
		seeds = append(seeds, *simSeed)
	default:
		n := *simSeeds
		if n == 0 {
			n = 8
			if testing.Short() {
				n = 3
			}
			if v, err := strconv.ParseUint(os.Getenv("WARREN_SIM_SEEDS"), 10, 64); err == nil && v > 0 {
				n = v
			}
		}
		for i := uint64(1); i <= n; i++ {
			seeds = append(seeds, i)
		}
	}
	const steps = 1500
	var elections []int
	commits, crashes, partitions, snaps, ran := 0, 0, 0, 0, 0
	start := time.Now()
	for _, seed := range seeds {
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			cryptotest.SetGlobalRandom(t, seed)
			s := runSim(t, seed, steps)
			if s.failure != "" {
				t.Fatalf("seed %d (%s): %s\nreproduce: go test ./quorum/ -run 'TestSimulation$' -v -args -sim.seed=%d",
					seed, s.chaos, s.failure, seed)
			}
			elections = append(elections, s.elections...)
			commits += s.commits
			crashes += s.crashes
			partitions += s.partitions
			snaps += s.snapsSent
			ran++
		})
		if !ok {
			break
		}
	}
	el := time.Since(start)
	slices.Sort(elections)
	if len(elections) > 0 {
		t.Logf("%d seeds in %v: %d confirmed publishes (%.0f/s of wall time), %d crashes, %d partitions, %d snapshots sent; "+
			"new leader after losing one: median %d ticks, max %d (of %d elections)",
			ran, el.Round(time.Millisecond), commits, float64(commits)/el.Seconds(), crashes, partitions, snaps,
			elections[len(elections)/2], elections[len(elections)-1], len(elections))
	}
}

func flagUint(name string, def uint64, usage string) *uint64 {
	return flag.Uint64(name, def, usage)
}

// TestSimulationReproduces: the same seed takes the same course.
func TestSimulationReproduces(t *testing.T) {
	type course struct {
		steps, commits, crashes, partitions int
		elections                           []int
		delivered                           int
	}
	run := func() course {
		var c course
		t.Run("run", func(t *testing.T) {
			cryptotest.SetGlobalRandom(t, 11)
			s := runSim(t, 11, 600)
			require.Empty(t, s.failure)
			c = course{s.step, s.commits, s.crashes, s.partitions, s.elections, len(s.delivered)}
		})
		return c
	}
	first := run()
	require.NotZero(t, first.commits)
	require.Equal(t, first, run())
}
