package quorum

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/storage/raftlog"
	"github.com/warrenmq/warren/storage/wal"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// Errors of proposals and groups.
var (
	ErrNotLeader   = errors.New("quorum: proposal dropped: this member is not the leader")
	ErrNodeClosed  = errors.New("quorum: node closed")
	ErrGroupExists = errors.New("quorum: group exists")
	ErrNoGroup     = errors.New("quorum: no such group")
)

// maxEntry is the most command bytes batched into one raft entry (less
// with small WAL segments: a record may fill at most half of one).
const maxEntry = 1 << 20

// NodeOptions configure a Node.
type NodeOptions struct {
	// Dir holds the node's write-ahead log.
	Dir string
	// SegmentSize of the WAL; 0 is the WAL's default.
	SegmentSize int64
	// Tick is raft's tick; 0 means 100ms.
	Tick time.Duration
	// Effects receives each group's deliveries and dead-letters, on the
	// node's goroutine, after the commands producing them are committed; it
	// must not block, and the slice and bodies are only valid during the call.
	Effects func(group uint64, effs []Effect)

	// ID is this node's raft member id in every group; 0 means 1 (one node).
	ID uint64
	// Transport carries raft messages to the other members of groups with
	// several; nil on a single node, where no group has another member.
	Transport Transport
	// LocalPid says whether a consumer's pid belongs to this node: after a
	// restart only those consumers' messages are returned (the others are
	// consumers on live nodes). nil: every pid is local (one node).
	LocalPid func(pid uint64) bool

	// manual: no node goroutine; the simulation test ticks and cycles the
	// node itself, so that a seed decides every step.
	manual bool
	// seqBase, if not 0, starts the proposal sequence instead of the clock,
	// for the simulation's reproducibility.
	seqBase uint64
}

// Transport sends raft messages to other nodes. Send runs on the node
// goroutine after everything the messages acknowledge is durable; it must
// not block (a slow or unreachable peer loses messages, which raft
// retransmits), and it may keep msgs: the node does not reuse them. The
// receiving node hands each message to Node.Step; a transport that cannot
// deliver a message reports it with Node.ReportUnreachable, and the outcome
// of a snapshot message (pb.MsgSnap) with Node.ReportSnapshot.
type Transport interface {
	Send(group uint64, msgs []pb.Message)
}

// Node is this process's member of every quorum group: one goroutine
// drives all groups' raft state and writes every group's entries through one
// WAL, so each round of Ready()s costs one fdatasync, not one per group.
type Node struct {
	id   uint64 // raft member id
	opts NodeOptions
	wal  *wal.Log

	mu       sync.Mutex // guards groups, proposed, steps, closed, and every Group's inbox
	groups   map[uint64]*Group
	proposed []*Group // groups with an inbox to propose
	steps    []step   // messages from other members, and transport reports
	removed  []*Group // groups Remove took out, for the node goroutine to drop
	closed   bool

	kick chan struct{} // wakes the node goroutine; capacity 1
	stop chan struct{}
	wg   sync.WaitGroup // the node goroutine

	// Used by the node goroutine only (and by OpenNode before it starts).
	maxEntry   int
	batchSeq   uint64
	eff        []Effect
	active     []*Group
	deferred   []batch // proposals waiting for their group to know a leader
	recovering bool    // replaying at OpenNode: effects were acted on before the restart
}

// step is a raft message for one of the node's groups: from another
// member, or a transport's report (pb.MsgUnreachable, pb.MsgSnapStatus).
type step struct {
	group uint64
	m     pb.Message
}

// batch is a group's proposals taken from its inbox.
type batch struct {
	g    *Group
	data []byte
	n    int
	done []func(Result, error)
}

// Group is one quorum queue's raft group on this node.
type Group struct {
	id    uint64
	node  *Node
	rn    *raft.RawNode
	store *raftlog.Group
	sm    *State
	cs    pb.ConfState
	// lead is the member this one knows as leader (raft.None: none), set
	// by the node goroutine from each Ready, read by anyone.
	lead atomic.Uint64

	// Guarded by node.mu: commands waiting to be proposed, and their
	// callbacks in the same order.
	inbox     []byte
	inboxN    int
	inboxDone []func(Result, error)
	scratch   []byte

	// Node goroutine only: batches this node proposed, by sequence.
	pending map[uint64][]func(Result, error)

	statsMu sync.Mutex // guards stats
	stats   Stats
}

// Stats are a group's queue counters as of the last command applied.
type Stats struct {
	Ready      int
	ReadyBytes int64
	// Live counts ready and checked-out messages.
	Live      int
	Consumers int
	// NextExpiry is when the head message expires (unix ms), 0: never.
	NextExpiry int64
}

// Stats returns the counters as of the last command applied.
func (g *Group) Stats() Stats {
	g.statsMu.Lock()
	defer g.statsMu.Unlock()
	return g.stats
}

// noteStats records the state's counters; node goroutine.
func (g *Group) noteStats() {
	st := Stats{Ready: g.sm.Ready(), ReadyBytes: g.sm.ReadyBytes(), Live: g.sm.Live(), Consumers: g.sm.Consumers(), NextExpiry: g.sm.NextExpiry()}
	g.statsMu.Lock()
	g.stats = st
	g.statsMu.Unlock()
}

// Remove deletes a group from the node: its proposals fail with ErrNoGroup
// and its log is dropped from the WAL.
func (n *Node) Remove(id uint64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	g := n.groups[id]
	if g == nil {
		return ErrNoGroup
	}
	delete(n.groups, id)
	n.removed = append(n.removed, g)
	n.wakeLocked()
	return nil
}

// dropRemovedLocked forgets the groups Remove took out and returns their
// callbacks, which the caller runs (with ErrNoGroup) once n.mu is released;
// node goroutine, n.mu held.
func (n *Node) dropRemovedLocked() (failed []func(Result, error)) {
	if len(n.removed) == 0 {
		return nil
	}
	gone := n.removed
	n.removed = nil
	isGone := func(g *Group) bool {
		for _, x := range gone {
			if x == g {
				return true
			}
		}
		return false
	}
	n.active = slices.DeleteFunc(n.active, isGone)
	n.proposed = slices.DeleteFunc(n.proposed, isGone)
	n.deferred = slices.DeleteFunc(n.deferred, func(b batch) bool {
		if !isGone(b.g) {
			return false
		}
		failed = append(failed, b.done...)
		return true
	})
	for _, g := range gone {
		for seq, cbs := range g.pending {
			failed = append(failed, cbs...)
			delete(g.pending, seq)
		}
		failed = append(failed, g.inboxDone...)
		g.inbox, g.inboxN, g.inboxDone = nil, 0, nil
		// Durable with the next sync; a group dropped before it is found
		// again at start, and its owner removes it then.
		_ = g.store.Drop(nil)
	}
	return failed
}

// ID is the group's id (its WAL stream).
func (g *Group) ID() uint64 { return g.id }

// Leader is the member id of the group's leader as this member knows it,
// or 0 while there is none (an election, or cut off from a majority).
func (g *Group) Leader() uint64 { return g.lead.Load() }

func (n *Node) raftConfig(s raft.Storage, applied uint64) *raft.Config {
	return &raft.Config{
		ID: n.id, ElectionTick: 10, HeartbeatTick: 1, Storage: s, Applied: applied,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, CheckQuorum: true, PreVote: true,
		Logger: discardLogger{},
	}
}

// OpenNode opens the node's WAL, restores every group in it, replays their
// committed commands, returns the messages of consumers from before the
// restart to their queues, and starts the node goroutine.
func OpenNode(opts NodeOptions) (*Node, error) {
	if opts.Tick <= 0 {
		opts.Tick = 100 * time.Millisecond
	}
	w, rec, err := wal.Open(opts.Dir, wal.Options{SegmentSize: opts.SegmentSize})
	if err != nil {
		return nil, err
	}
	n := &Node{id: opts.ID, opts: opts, wal: w, groups: make(map[uint64]*Group),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), batchSeq: uint64(time.Now().UnixNano()),
		maxEntry: maxEntry}
	if n.id == 0 {
		n.id = 1
	}
	if opts.seqBase != 0 {
		n.batchSeq = opts.seqBase
	}
	if opts.SegmentSize > 0 && opts.SegmentSize/4 < maxEntry {
		n.maxEntry = int(opts.SegmentSize / 4)
	}
	for id, s := range rec.Streams {
		store, err := raftlog.Restore(w, id, s)
		if err != nil {
			w.Close()
			return nil, err
		}
		snap, _ := store.Snapshot()
		if raft.IsEmptySnap(snap) {
			w.Close()
			return nil, fmt.Errorf("quorum: group %d has no snapshot", id)
		}
		sm, err := Restore(snap.Data)
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("quorum: group %d: %w", id, err)
		}
		g, err := n.startGroup(id, store, sm, snap.Metadata.Index, snap.Metadata.ConfState)
		if err != nil {
			w.Close()
			return nil, err
		}
		n.groups[id] = g
	}
	// Replay, then return what the consumers of the previous run held.
	// The replay's deliveries went to consumers of the previous run and its
	// dead-letters were routed then: its effects are not acted on again.
	for _, g := range n.groups {
		n.active = append(n.active, g)
	}
	n.recovering = true
	err = n.cycle()
	n.recovering = false
	if err != nil {
		w.Close()
		return nil, err
	}
	for _, g := range n.groups {
		for _, pid := range g.sm.Pids() {
			if opts.LocalPid == nil || opts.LocalPid(pid) {
				g.enqueueLocked(&Command{Type: CmdDown, Pid: pid}, nil)
			}
		}
		if g.inboxN > 0 {
			n.proposed = append(n.proposed, g)
		}
	}
	if err := n.cycle(); err != nil {
		w.Close()
		return nil, err
	}
	if !opts.manual {
		n.wg.Add(1)
		go n.run()
	}
	return n, nil
}

func (n *Node) startGroup(id uint64, store *raftlog.Group, sm *State, applied uint64, cs pb.ConfState) (*Group, error) {
	rn, err := raft.NewRawNode(n.raftConfig(store, applied))
	if err != nil {
		return nil, fmt.Errorf("quorum: group %d: %w", id, err)
	}
	g := &Group{id: id, node: n, rn: rn, store: store, sm: sm, cs: cs, pending: make(map[uint64][]func(Result, error))}
	g.noteStats()
	// One member: it is the leader as soon as it says so. With more, the
	// election timeout decides.
	if len(cs.Voters) == 1 && cs.Voters[0] == n.id {
		if err := rn.Campaign(); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// Create makes a new group with this node as its only member, durably.
func (n *Node) Create(id uint64, cfg Config) (*Group, error) {
	return n.CreateMembers(id, cfg, []uint64{n.id})
}

// CreateMembers makes a new group whose voters are members (this node's ID
// among them), durably. Every member creates the group the same way, with
// the same cfg; with several members the election timeout picks a leader.
func (n *Node) CreateMembers(id uint64, cfg Config, members []uint64) (*Group, error) {
	if !slices.Contains(members, n.id) {
		return nil, fmt.Errorf("quorum: group %d: members %v do not include this node (%d)", id, members, n.id)
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrNodeClosed
	}
	if _, ok := n.groups[id]; ok {
		n.mu.Unlock()
		return nil, ErrGroupExists
	}
	n.mu.Unlock()
	// The group starts from a snapshot at index 1 that holds its membership
	// and its empty state, as raft recommends over Bootstrap.
	store := raftlog.New(n.wal, id)
	sm := New(cfg)
	cs := pb.ConfState{Voters: slices.Clone(members)}
	snap := pb.Snapshot{Data: sm.Snapshot(), Metadata: pb.SnapshotMetadata{Index: 1, Term: 1, ConfState: cs}}
	errc := make(chan error, 1)
	if _, err := store.Save(pb.HardState{Term: 1, Commit: 1}, nil, snap, true, func(err error) { errc <- err }); err != nil {
		return nil, err
	}
	if err := <-errc; err != nil {
		return nil, err
	}
	g, err := n.startGroup(id, store, sm, 1, cs)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrNodeClosed
	}
	n.groups[id] = g
	n.proposed = append(n.proposed, g) // its campaign needs a Ready
	n.wakeLocked()
	return g, nil
}

// Group returns a group by id.
func (n *Node) Group(id uint64) *Group {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.groups[id]
}

// Groups returns the ids of the node's groups.
func (n *Node) Groups() []uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	ids := make([]uint64, 0, len(n.groups))
	for id := range n.groups {
		ids = append(ids, id)
	}
	return ids
}

// Step hands the node a raft message from another member of group. It
// returns ErrNoGroup when the group is not (or not yet) on this node: raft
// sends again.
func (n *Node) Step(group uint64, m pb.Message) error {
	return n.addStep(group, m)
}

// ReportUnreachable tells group's raft that a message to member could not
// be sent, so that its leader probes before sending more.
func (n *Node) ReportUnreachable(group, member uint64) {
	_ = n.addStep(group, pb.Message{Type: pb.MsgUnreachable, From: member})
}

// ReportSnapshot tells group's raft whether the snapshot sent to member
// arrived; until then the leader sends that member nothing else.
func (n *Node) ReportSnapshot(group, member uint64, ok bool) {
	_ = n.addStep(group, pb.Message{Type: pb.MsgSnapStatus, From: member, Reject: !ok})
}

func (n *Node) addStep(group uint64, m pb.Message) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrNodeClosed
	}
	if n.groups[group] == nil {
		return ErrNoGroup
	}
	n.steps = append(n.steps, step{group: group, m: m})
	n.wakeLocked()
	return nil
}

// WALStats returns the node's WAL counters.
func (n *Node) WALStats() wal.Stats { return n.wal.Stats() }

// Propose submits a command; done (if not nil) runs on the node goroutine
// with the command's result once it is committed, durable and applied, or
// with an error if it cannot be. Commands proposed together share a raft
// entry.
func (g *Group) Propose(cmd *Command, done func(Result, error)) error {
	n := g.node
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrNodeClosed
	}
	if n.groups[g.id] != g {
		return ErrNoGroup
	}
	if g.inboxN == 0 {
		n.proposed = append(n.proposed, g)
	}
	g.enqueueLocked(cmd, done)
	n.wakeLocked()
	return nil
}

// enqueueLocked adds a command to the inbox; node.mu is held (or the node
// goroutine is not running yet).
func (g *Group) enqueueLocked(cmd *Command, done func(Result, error)) {
	g.scratch = cmd.AppendTo(g.scratch[:0])
	g.inbox = binary.AppendUvarint(g.inbox, uint64(len(g.scratch)))
	g.inbox = append(g.inbox, g.scratch...)
	g.inboxN++
	g.inboxDone = append(g.inboxDone, done)
}

func (n *Node) wakeLocked() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// Close stops the node goroutine, failing proposals not yet committed, and
// closes the WAL.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrNodeClosed
	}
	n.closed = true
	n.mu.Unlock()
	close(n.stop)
	n.wg.Wait()
	for _, b := range n.deferred {
		for _, cb := range b.done {
			if cb != nil {
				cb(Result{}, ErrNodeClosed)
			}
		}
	}
	for _, g := range n.groups {
		for _, cbs := range g.pending {
			for _, cb := range cbs {
				if cb != nil {
					cb(Result{}, ErrNodeClosed)
				}
			}
		}
		for _, cb := range g.inboxDone {
			if cb != nil {
				cb(Result{}, ErrNodeClosed)
			}
		}
	}
	return n.wal.Close()
}

// run is the node goroutine.
func (n *Node) run() {
	defer n.wg.Done()
	t := time.NewTicker(n.opts.Tick)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-n.kick:
		case <-t.C:
			n.tick()
		}
		if err := n.cycle(); err != nil {
			// The WAL failed: nothing can be made durable any more. Its
			// error is sticky; proposals fail with it from now on.
			n.failAll(err)
		}
	}
}

// tick advances every group's raft clock by one tick.
func (n *Node) tick() {
	n.mu.Lock()
	for _, g := range n.groups {
		g.rn.Tick()
		n.active = append(n.active, g)
	}
	n.mu.Unlock()
}

func (n *Node) failAll(err error) {
	n.mu.Lock()
	groups := make([]*Group, 0, len(n.groups))
	for _, g := range n.groups {
		groups = append(groups, g)
	}
	n.mu.Unlock()
	for _, g := range groups {
		for seq, cbs := range g.pending {
			for _, cb := range cbs {
				if cb != nil {
					cb(Result{}, err)
				}
			}
			delete(g.pending, seq)
		}
	}
}

// cycle proposes the inboxes, then runs Ready rounds until no group has
// one: each round saves every group's Ready to the WAL, waits for the one
// sync, then applies committed entries and advances.
func (n *Node) cycle() error {
	n.mu.Lock()
	failed := n.dropRemovedLocked()
	proposed := n.proposed
	n.proposed = nil
	batches := n.deferred
	n.deferred = nil
	steps := n.steps
	n.steps = nil
	for _, s := range steps {
		g := n.groups[s.group]
		if g == nil {
			continue // dropped since
		}
		switch s.m.Type {
		case pb.MsgUnreachable:
			g.rn.ReportUnreachable(s.m.From)
		case pb.MsgSnapStatus:
			status := raft.SnapshotFinish
			if s.m.Reject {
				status = raft.SnapshotFailure
			}
			g.rn.ReportSnapshot(s.m.From, status)
		case pb.MsgProp:
			// A proposal another member forwarded is taken only by a
			// leader: forwarded again (this member lost the lead since)
			// it could land after the same proposer's later proposals,
			// which went straight to the new leader, and break a
			// publisher's order. Dropped, it is a publish not confirmed.
			if g.rn.BasicStatus().RaftState == raft.StateLeader {
				_ = g.rn.Step(s.m)
			}
		default:
			// A message raft refuses (a stale or foreign one) changes nothing.
			_ = g.rn.Step(s.m)
		}
		n.active = append(n.active, g)
	}
	for _, g := range proposed {
		if g.inboxN > 0 {
			batches = append(batches, batch{g: g, data: g.inbox, n: g.inboxN, done: g.inboxDone})
			g.inbox, g.inboxN, g.inboxDone = nil, 0, nil
		}
		n.active = append(n.active, g)
	}
	n.mu.Unlock()
	for _, cb := range failed {
		if cb != nil {
			cb(Result{}, ErrNoGroup)
		}
	}

	for {
		// A group that does not know a leader yet (it is electing itself)
		// keeps its proposals until it does, rather than dropping them.
		for _, b := range batches {
			if b.g.rn.BasicStatus().Lead == raft.None {
				n.deferred = append(n.deferred, b)
				continue
			}
			n.propose(b.g, b.data, b.n, b.done)
			n.active = append(n.active, b.g)
		}
		if err := n.readyRounds(); err != nil {
			return err
		}
		progress := false
		for _, b := range n.deferred {
			if b.g.rn.BasicStatus().Lead != raft.None {
				progress = true
			}
		}
		if !progress {
			return nil
		}
		batches, n.deferred = n.deferred, nil
	}
}

// readyRounds runs Ready rounds until no active group has one.
func (n *Node) readyRounds() error {
	for len(n.active) > 0 {
		var ready []*Group
		var rds []raft.Ready
		seen := make(map[*Group]bool, len(n.active))
		for _, g := range n.active {
			if seen[g] || !g.rn.HasReady() {
				continue
			}
			seen[g] = true
			ready = append(ready, g)
			rds = append(rds, g.rn.Ready())
		}
		n.active = n.active[:0]
		if len(ready) == 0 {
			break
		}
		var wg sync.WaitGroup
		var errMu sync.Mutex // guards werr
		var werr error
		for i, g := range ready {
			rd := &rds[i]
			wg.Add(1)
			if _, err := g.store.Save(rd.HardState, rd.Entries, rd.Snapshot, rd.MustSync, func(err error) {
				if err != nil {
					errMu.Lock()
					werr = err
					errMu.Unlock()
				}
				wg.Done()
			}); err != nil {
				wg.Done()
				wg.Wait()
				return err
			}
		}
		wg.Wait()
		if werr != nil {
			return werr
		}
		for i, g := range ready {
			rd := rds[i]
			// Messages to other members leave once what they acknowledge
			// is durable.
			if len(rd.Messages) > 0 && n.opts.Transport != nil {
				n.opts.Transport.Send(g.id, rd.Messages)
			}
			if !raft.IsEmptySnap(rd.Snapshot) {
				sm, err := Restore(rd.Snapshot.Data)
				if err != nil {
					return fmt.Errorf("quorum: group %d: %w", g.id, err)
				}
				g.sm = sm
				g.noteStats()
				g.cs = rd.Snapshot.Metadata.ConfState
			}
			if err := n.apply(g, rd.CommittedEntries); err != nil {
				return err
			}
			if rd.SoftState != nil {
				g.lead.Store(rd.SoftState.Lead)
			}
			g.rn.Advance(rd)
			n.active = append(n.active, g)
		}
	}
	return nil
}

// propose splits a group's inbox into entries of at most maxEntry bytes.
// An entry is: proposer node id, batch sequence, command count, then each
// command length-prefixed.
func (n *Node) propose(g *Group, data []byte, count int, done []func(Result, error)) {
	for len(data) > 0 {
		k, size := 0, 0
		for k < count {
			l, w := binary.Uvarint(data[size:])
			if k > 0 && size+w+int(l) > n.maxEntry {
				break
			}
			size += w + int(l)
			k++
		}
		n.batchSeq++
		seq := n.batchSeq
		entry := binary.AppendUvarint(nil, n.id)
		entry = binary.AppendUvarint(entry, seq)
		entry = binary.AppendUvarint(entry, uint64(k))
		entry = append(entry, data[:size]...)
		if err := g.rn.Propose(entry); err != nil {
			for _, cb := range done[:k] {
				if cb != nil {
					cb(Result{}, ErrNotLeader)
				}
			}
		} else {
			g.pending[seq] = done[:k:k]
		}
		data, count, done = data[size:], count-k, done[k:]
	}
}

// apply runs committed entries through the state machine and hands their
// effects out; a release snapshots the group and compacts its log.
func (n *Node) apply(g *Group, ents []pb.Entry) error {
	for i := range ents {
		e := &ents[i]
		switch e.Type {
		case pb.EntryConfChange:
			var cc pb.ConfChange
			if err := cc.Unmarshal(e.Data); err != nil {
				return err
			}
			g.cs = *g.rn.ApplyConfChange(cc)
			continue
		case pb.EntryConfChangeV2:
			var cc pb.ConfChangeV2
			if err := cc.Unmarshal(e.Data); err != nil {
				return err
			}
			g.cs = *g.rn.ApplyConfChange(cc)
			continue
		}
		if len(e.Data) == 0 {
			continue // a new leader's empty entry
		}
		d := decoder{b: e.Data}
		from, seq, count := d.uvarint(), d.uvarint(), d.uvarint()
		if d.err != nil {
			return fmt.Errorf("quorum: group %d: entry %d: %w", g.id, e.Index, d.err)
		}
		var cbs []func(Result, error)
		if from == n.id {
			cbs = g.pending[seq]
			delete(g.pending, seq)
		}
		n.eff = n.eff[:0]
		for k := uint64(0); k < count; k++ {
			raw := d.bytes()
			if d.err != nil {
				return fmt.Errorf("quorum: group %d: entry %d: %w", g.id, e.Index, d.err)
			}
			cmd, err := DecodeCommand(raw)
			var res Result
			if err != nil {
				res.Err = err // a command this version cannot read changes nothing
			} else {
				res, n.eff = g.sm.Apply(e.Index, &cmd, n.eff)
				g.noteStats()
			}
			if int(k) < len(cbs) && cbs[k] != nil {
				cbs[k](res, nil)
			}
		}
		// Releases are the node's business; the rest goes to the caller.
		out := n.eff[:0]
		for _, f := range n.eff {
			if f.Type == EffRelease {
				if err := n.release(g, f); err != nil {
					return err
				}
				continue
			}
			out = append(out, f)
		}
		if len(out) > 0 && n.opts.Effects != nil && !n.recovering {
			n.opts.Effects(g.id, out)
		}
	}
	return nil
}

// release snapshots the group at a release point and compacts its log
// there: the WAL frees the segments no group needs any more.
func (n *Node) release(g *Group, f Effect) error {
	cs := g.cs
	if _, err := g.store.CreateSnapshot(f.Index, &cs, f.Snapshot, nil); err != nil {
		if errors.Is(err, raft.ErrSnapOutOfDate) {
			return nil
		}
		return fmt.Errorf("quorum: group %d: snapshot at %d: %w", g.id, f.Index, err)
	}
	if err := g.store.Compact(f.Index); err != nil && !errors.Is(err, raft.ErrCompacted) {
		return fmt.Errorf("quorum: group %d: compact at %d: %w", g.id, f.Index, err)
	}
	return nil
}

// discardLogger keeps raft quiet; its panics stay panics.
type discardLogger struct{}

func (discardLogger) Debug(...interface{})              {}
func (discardLogger) Debugf(string, ...interface{})     {}
func (discardLogger) Error(...interface{})              {}
func (discardLogger) Errorf(string, ...interface{})     {}
func (discardLogger) Info(...interface{})               {}
func (discardLogger) Infof(string, ...interface{})      {}
func (discardLogger) Warning(...interface{})            {}
func (discardLogger) Warningf(string, ...interface{})   {}
func (discardLogger) Fatal(v ...interface{})            { panic(fmt.Sprint(v...)) }
func (discardLogger) Fatalf(f string, v ...interface{}) { panic(fmt.Sprintf(f, v...)) }
func (discardLogger) Panic(v ...interface{})            { panic(fmt.Sprint(v...)) }
func (discardLogger) Panicf(f string, v ...interface{}) { panic(fmt.Sprintf(f, v...)) }
