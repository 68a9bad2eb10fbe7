package queue

import (
	"bytes"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/quorum"
	"github.com/warrenmq/warren/storage"
)

// QuorumNode is this broker's quorum engine (one quorum.Node: one goroutine
// and one WAL for every quorum queue) and the quorum queues that use it,
// by raft group id, so that each group's effects reach its queue.
type QuorumNode struct {
	dir string
	log *slog.Logger

	mu sync.RWMutex // guards node, queues and lastID
	// node is nil until the first quorum queue when dir held no log: a
	// broker without quorum queues writes no WAL segments (64 MiB of
	// preallocated files), so it starts in milliseconds.
	node   *quorum.Node
	queues map[uint64]*Quorum
	lastID uint64

	// pids name consumers and basic.get's one-shot consumers in the raft
	// log; they start from the clock so a restart does not reuse the
	// previous run's (the engine returns those at start).
	pids atomic.Uint64
}

// OpenQuorumNode opens the quorum engine's log in dir and recovers every
// group in it; the caller attaches each to its queue with NewQuorum and
// removes the others with DropOrphans.
func OpenQuorumNode(dir string, log *slog.Logger) (*QuorumNode, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &QuorumNode{dir: dir, log: log, queues: make(map[uint64]*Quorum)}
	n.pids.Store(uint64(time.Now().UnixNano()))
	segs, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil || len(segs) == 0 {
		return n, nil // nothing to recover: opened with the first queue
	}
	if err := n.openLocked(); err != nil {
		return nil, err
	}
	for _, id := range n.node.Groups() {
		n.lastID = max(n.lastID, id)
	}
	return n, nil
}

// openLocked opens the engine. Recovery may run effects, which take n.mu:
// it is only called under n.mu when dir holds no log to recover.
func (n *QuorumNode) openLocked() error {
	node, err := quorum.OpenNode(quorum.NodeOptions{Dir: n.dir, Effects: n.effects})
	if err != nil {
		return err
	}
	n.node = node
	return nil
}

// engine is the open engine, or nil when no quorum queue was ever made.
func (n *QuorumNode) engine() *quorum.Node {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.node
}

// Close stops the queues' timers and the engine; proposals not yet
// committed fail.
func (n *QuorumNode) Close() error {
	n.mu.RLock()
	qs := make([]*Quorum, 0, len(n.queues))
	for _, q := range n.queues {
		qs = append(qs, q)
	}
	n.mu.RUnlock()
	for _, q := range qs {
		q.stopTimers()
	}
	if node := n.engine(); node != nil {
		return node.Close()
	}
	return nil
}

// DropOrphans removes the groups no queue claimed (their queue was deleted
// just before a crash), once recovery is done.
func (n *QuorumNode) DropOrphans() {
	node := n.engine()
	if node == nil {
		return
	}
	for _, id := range node.Groups() {
		n.mu.RLock()
		_, ok := n.queues[id]
		n.mu.RUnlock()
		if !ok {
			n.log.Info("dropping a quorum group no queue owns", "group", id)
			_ = node.Remove(id)
		}
	}
}

// WALStats are the engine's WAL counters.
func (n *QuorumNode) WALStats() any {
	if node := n.engine(); node != nil {
		return node.WALStats()
	}
	return nil
}

// effects runs on the engine's goroutine: it hands each group's effects to
// its queue.
func (n *QuorumNode) effects(group uint64, effs []quorum.Effect) {
	n.mu.RLock()
	q := n.queues[group]
	n.mu.RUnlock()
	if q != nil {
		q.effects(effs)
	}
}

func (n *QuorumNode) nextPid() uint64 { return n.pids.Add(1) }

// QuorumOptions are a quorum queue's declare-time properties.
type QuorumOptions struct {
	Args   map[string]any
	Config Config
	Hooks  Hooks
	// Group is the raft group of a recovered queue; 0 makes a new one.
	Group uint64
}

// NewQuorum makes a quorum queue (a new raft group, or the recovered group
// o.Group) on the node.
func (n *QuorumNode) NewQuorum(name string, o QuorumOptions) (*Quorum, error) {
	q := &Quorum{
		Decl:      Decl{Name: name, Type: TypeQuorum, Durable: true, Args: o.Args},
		node:      n,
		hooks:     o.Hooks,
		consumers: make(map[Consumer]*qconsumer),
		byPid:     make(map[uint64]*qconsumer),
	}
	cfg := o.Config
	q.config.Store(&cfg)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.node == nil {
		if o.Group != 0 {
			return nil, errors.New("quorum queue " + name + ": the quorum log is missing")
		}
		if err := n.openLocked(); err != nil {
			return nil, err
		}
	}
	if o.Group != 0 {
		q.group = n.node.Group(o.Group)
		if q.group == nil {
			return nil, errors.New("quorum queue " + name + ": its raft group is missing from the log")
		}
	} else {
		id := max(n.lastID+1, uint64(time.Now().UnixNano()))
		g, err := n.node.Create(id, engineConfig(cfg))
		if err != nil {
			return nil, err
		}
		n.lastID = id
		q.group = g
	}
	n.queues[q.group.ID()] = q
	q.lastUsed = time.Now()
	if cfg.Expires > 0 {
		q.unused = time.AfterFunc(cfg.Expires, q.checkUnused)
	}
	if st := q.group.Stats(); st.NextExpiry > 0 {
		q.scheduleExpiry(st.NextExpiry)
	}
	return q, nil
}

// engineConfig is the part of a queue's configuration the state machine
// applies: fixed when the group is made, as RabbitMQ 3.10 fixes them at
// declare.
func engineConfig(c Config) quorum.Config {
	// The engine's zero is "no limit" and a negative value a limit of 0.
	limit := func(n int64) int64 {
		switch {
		case n < 0:
			return 0
		case n == 0:
			return -1
		}
		return n
	}
	qc := quorum.Config{
		SingleActive:  c.SingleActiveConsumer,
		MaxLength:     limit(c.MaxLength),
		MaxBytes:      limit(c.MaxLengthBytes),
		DeliveryLimit: limit(c.DeliveryLimit),
	}
	if c.Overflow == RejectPublish {
		qc.Overflow = quorum.RejectPublish
	}
	if c.MessageTTL >= 0 {
		qc.HasTTL, qc.MessageTTL = true, c.MessageTTL.Milliseconds()
	}
	return qc
}

// Quorum is a quorum queue: its messages and consumers are a raft group's
// state (quorum.State), changed only by commands committed to the group's
// log; deliveries and dead letters come back as effects on the engine's
// goroutine. Every message is durable, whatever its delivery mode.
type Quorum struct {
	// Decl never changes after NewQuorum.
	Decl
	config atomic.Pointer[Config]
	node   *QuorumNode
	group  *quorum.Group
	hooks  Hooks

	// mu guards the fields below. Consumer.Deliver and Cancel are called
	// with it held (as a classic queue does), never a proposal's wait.
	mu        sync.Mutex
	consumers map[Consumer]*qconsumer
	byPid     map[uint64]*qconsumer
	deleted   bool
	// lastUsed and unused are x-expires: the queue goes once it had no
	// consumer and no basic.get for that long.
	lastUsed time.Time
	unused   *time.Timer
	expiry   *time.Timer
	expiryAt int64 // unix ms the timer fires at; 0: not armed

	published, delivered, acked, deadLettered atomic.Uint64
}

// qconsumer is a consumer of a quorum queue; its pid names it in the log.
type qconsumer struct {
	c     Consumer
	pid   uint64
	noAck bool
	// waiting are deliveries the consumer had no room for (its
	// connection's buffer was full), handed over again on Kick, in order.
	waiting []Delivery
}

// Prefetcher is implemented by consumers with a prefetch limit (basic.qos):
// a quorum queue hands it to the state machine as the consumer's credit.
type Prefetcher interface {
	Prefetch() int
}

var (
	_ Interface = (*Quorum)(nil)
	_ Enqueuer  = (*Quorum)(nil)
)

// A quorum delivery carries the message id in seq and the consumer's pid
// in deadline: the fields a classic delivery uses for its own bookkeeping.
func quorumDelivery(m *Message, msgID, pid uint64, count uint32) Delivery {
	return Delivery{Message: m, Redelivered: count > 0, DeliveryCount: count, seq: msgID, deadline: int64(pid)}
}

func (d *Delivery) quorumIDs() (msgID, pid uint64) { return d.seq, uint64(d.deadline) }

// Group is the queue's raft group id.
func (q *Quorum) Group() uint64 { return q.group.ID() }

// Leader is the member id of the group's leader (1 on a single node).
func (q *Quorum) Leader() uint64 { return q.group.Leader() }

// Config returns the queue's configuration.
func (q *Quorum) Config() *Config { return q.config.Load() }

// SetConfig applies a policy. Dead-lettering follows it at once; the
// limits the state machine applies stay as declared.
func (q *Quorum) SetConfig(c Config) { q.config.Store(&c) }

// StoreKey is empty: a quorum queue's data is its raft log.
func (q *Quorum) StoreKey() string { return "" }

// Touch records a use, for x-expires.
func (q *Quorum) Touch() {
	q.mu.Lock()
	q.lastUsed = time.Now()
	q.mu.Unlock()
}

// checkUnused deletes the queue (through the vhost's hook) once it has been
// unused for its x-expires.
func (q *Quorum) checkUnused() {
	exp := q.Config().Expires
	q.mu.Lock()
	if q.deleted || exp <= 0 {
		q.mu.Unlock()
		return
	}
	if len(q.consumers) > 0 {
		q.lastUsed = time.Now()
	}
	left := exp - time.Since(q.lastUsed)
	if left > 0 {
		q.unused.Reset(left)
		q.mu.Unlock()
		return
	}
	q.mu.Unlock()
	if q.hooks.Expired != nil {
		q.hooks.Expired(q)
	}
}

// Handover is a no-op: the state machine moves a single active consumer
// queue to the next consumer when the active one is cancelled or returns.
func (q *Quorum) Handover() {}

// Release is a no-op: quorum publishes are confirmed by their commit.
func (q *Quorum) Release(*Message) {}

// Push enqueues m without waiting; see Enqueue.
func (q *Quorum) Push(m *Message, _ *storage.Batch) PushResult {
	q.Enqueue(m, nil)
	return Accepted
}

// Enqueue proposes m; done learns when it is committed and fsynced.
func (q *Quorum) Enqueue(m *Message, done func(refused bool, err error)) {
	now := time.Now().UnixMilli()
	cmd := quorum.Command{Type: quorum.CmdEnqueue, Body: EncodeMessage(m), Size: uint32(len(m.Body)), Time: now, TTL: m.Expiration, HasTTL: m.HasExpiration}
	var cb func(quorum.Result, error)
	if done != nil {
		cb = func(r quorum.Result, err error) {
			if err == nil && r.Err != nil {
				err = r.Err
			}
			done(r.Rejected, err)
		}
	}
	if err := q.group.Propose(&cmd, cb); err != nil {
		if done != nil {
			done(false, err)
		}
		return
	}
	q.published.Add(1)
	ttl, has := m.Expiration, m.HasExpiration
	if c := q.Config(); c.MessageTTL >= 0 && (!has || c.MessageTTL.Milliseconds() < ttl) {
		ttl, has = c.MessageTTL.Milliseconds(), true
	}
	if has {
		q.mu.Lock()
		q.scheduleExpiryLocked(now + ttl)
		q.mu.Unlock()
	}
}

func (q *Quorum) scheduleExpiry(at int64) {
	q.mu.Lock()
	q.scheduleExpiryLocked(at)
	q.mu.Unlock()
}

// scheduleExpiryLocked arms the timer that proposes CmdExpire at `at`, if
// it is not armed earlier.
func (q *Quorum) scheduleExpiryLocked(at int64) {
	if q.deleted || (q.expiryAt != 0 && q.expiryAt <= at) {
		return
	}
	q.expiryAt = at
	wait := time.Duration(at-time.Now().UnixMilli()+1) * time.Millisecond
	if q.expiry == nil {
		q.expiry = time.AfterFunc(max(wait, 0), q.expire)
	} else {
		q.expiry.Reset(max(wait, 0))
	}
}

// expire proposes the clock to the state machine, which dead-letters what
// expired at the head, then re-arms for the new head.
func (q *Quorum) expire() {
	q.mu.Lock()
	q.expiryAt = 0
	q.mu.Unlock()
	_ = q.group.Propose(&quorum.Command{Type: quorum.CmdExpire, Time: time.Now().UnixMilli()}, func(quorum.Result, error) {
		if at := q.group.Stats().NextExpiry; at > 0 {
			q.scheduleExpiry(at)
		}
	})
}

// AddConsumer checks a consumer out of the queue with its prefetch as
// credit and its x-priority.
func (q *Quorum) AddConsumer(c Consumer, exclusive, noAck bool, priority int) error {
	q.mu.Lock()
	if q.deleted {
		q.mu.Unlock()
		return ErrDeleted
	}
	// basic.consume's exclusive flag is not enforced on a quorum queue,
	// as in RabbitMQ 3.10.
	qc := &qconsumer{c: c, pid: q.node.nextPid(), noAck: noAck}
	q.consumers[c] = qc
	q.byPid[qc.pid] = qc
	q.mu.Unlock()
	prefetch := 0
	if p, ok := c.(Prefetcher); ok && !noAck {
		prefetch = p.Prefetch()
	}
	r := q.wait(&quorum.Command{Type: quorum.CmdCheckout, Consumer: quorum.ConsumerID{Pid: qc.pid},
		Prefetch: uint32(max(prefetch, 0)), Priority: int32(priority)})
	if r.Err != nil {
		q.mu.Lock()
		delete(q.consumers, c)
		delete(q.byPid, qc.pid)
		q.mu.Unlock()
		if errors.Is(r.Err, quorum.ErrNoGroup) || errors.Is(r.Err, quorum.ErrNodeClosed) {
			return ErrDeleted
		}
		return r.Err
	}
	return nil
}

// RemoveConsumer cancels a consumer: it takes no more messages; those it
// holds stay checked out until settled or returned, and those it had no
// room for go back.
func (q *Quorum) RemoveConsumer(c Consumer) bool {
	q.mu.Lock()
	qc := q.consumers[c]
	if qc == nil {
		q.mu.Unlock()
		return false
	}
	delete(q.consumers, c)
	delete(q.byPid, qc.pid)
	waiting := qc.waiting
	qc.waiting = nil
	q.mu.Unlock()
	id := quorum.ConsumerID{Pid: qc.pid}
	if len(waiting) > 0 {
		_ = q.group.Propose(&quorum.Command{Type: quorum.CmdCancel, Consumer: id}, nil)
		q.wait(&quorum.Command{Type: quorum.CmdReturn, Consumer: id, MsgIDs: msgIDs(waiting)})
	} else {
		// Waited for, so that once basic.cancel-ok is out the state
		// machine hands the consumer nothing more.
		q.wait(&quorum.Command{Type: quorum.CmdCancel, Consumer: id})
	}
	return false
}

// wait proposes cmd and waits until it is applied (or failed).
func (q *Quorum) wait(cmd *quorum.Command) quorum.Result {
	ch := make(chan quorum.Result, 1)
	if err := q.group.Propose(cmd, func(r quorum.Result, err error) {
		if err != nil {
			r.Err = err
		}
		ch <- r
	}); err != nil {
		return quorum.Result{Err: err}
	}
	return <-ch
}

func msgIDs(ds []Delivery) []uint64 {
	ids := make([]uint64, len(ds))
	for i := range ds {
		ids[i], _ = ds[i].quorumIDs()
	}
	return ids
}

// effects acts on what the state machine decided; engine goroutine.
func (q *Quorum) effects(effs []quorum.Effect) {
	var dls []DeadLetter
	var settle, orphans map[uint64][]uint64
	q.mu.Lock()
	for i := range effs {
		f := &effs[i]
		switch f.Type {
		case quorum.EffDeliver:
			m, err := DecodeMessage(0, bytes.Clone(f.Body))
			pid := f.Consumer.Pid
			qc := q.byPid[pid]
			if err != nil || qc == nil {
				// Its consumer left before the delivery was decided: back
				// it goes (a corrupt message is dropped by the return
				// eventually reaching the delivery limit, if any).
				orphans = addID(orphans, pid, f.MsgID)
				continue
			}
			d := quorumDelivery(m, f.MsgID, pid, f.DeliveryCount)
			q.delivered.Add(1)
			if len(qc.waiting) > 0 || !qc.c.Deliver(q, d) {
				qc.waiting = append(qc.waiting, d)
				continue
			}
			if qc.noAck {
				settle = addID(settle, pid, f.MsgID)
			}
		case quorum.EffDeadLetter:
			q.deadLettered.Add(1)
			if m, err := DecodeMessage(0, bytes.Clone(f.Body)); err == nil {
				dls = append(dls, DeadLetter{Message: m, Reason: quorumReason(f.Reason)})
			}
		}
	}
	q.mu.Unlock()
	for pid, ids := range settle {
		q.acked.Add(uint64(len(ids)))
		_ = q.group.Propose(&quorum.Command{Type: quorum.CmdSettle, Consumer: quorum.ConsumerID{Pid: pid}, MsgIDs: ids}, nil)
	}
	for pid, ids := range orphans {
		_ = q.group.Propose(&quorum.Command{Type: quorum.CmdReturn, Consumer: quorum.ConsumerID{Pid: pid}, MsgIDs: ids}, nil)
	}
	if len(dls) > 0 && q.hooks.DeadLetter != nil && q.Config().HasDeadLetter {
		q.hooks.DeadLetter(q, dls)
	}
}

func addID(m map[uint64][]uint64, pid, id uint64) map[uint64][]uint64 {
	if m == nil {
		m = make(map[uint64][]uint64)
	}
	m[pid] = append(m[pid], id)
	return m
}

func quorumReason(r quorum.DeadLetterReason) Reason {
	switch r {
	case quorum.DeliveryLimit:
		return DeliveryLimit
	case quorum.MaxLen:
		return MaxLen
	case quorum.Expired:
		return Expired
	}
	return Rejected
}

// Kick hands consumers the deliveries they had no room for.
func (q *Quorum) Kick() {
	var settle map[uint64][]uint64
	q.mu.Lock()
	for _, qc := range q.consumers {
		n := 0
		for n < len(qc.waiting) && qc.c.Deliver(q, qc.waiting[n]) {
			if qc.noAck {
				id, pid := qc.waiting[n].quorumIDs()
				settle = addID(settle, pid, id)
			}
			n++
		}
		if n > 0 {
			qc.waiting = append(qc.waiting[:0], qc.waiting[n:]...)
		}
	}
	q.mu.Unlock()
	for pid, ids := range settle {
		q.acked.Add(uint64(len(ids)))
		_ = q.group.Propose(&quorum.Command{Type: quorum.CmdSettle, Consumer: quorum.ConsumerID{Pid: pid}, MsgIDs: ids}, nil)
	}
}

// Get is basic.get: a dequeue through the log, waited for.
func (q *Quorum) Get(noAck bool) (Delivery, int, bool) {
	q.Touch()
	pid := q.node.nextPid()
	type got struct {
		res quorum.Result
		m   *Message
		err error
	}
	ch := make(chan got, 1)
	err := q.group.Propose(&quorum.Command{Type: quorum.CmdDequeue, Consumer: quorum.ConsumerID{Pid: pid}, Settled: noAck, Time: time.Now().UnixMilli()},
		func(r quorum.Result, err error) {
			g := got{res: r, err: err}
			if err == nil && r.Found {
				g.m, g.err = DecodeMessage(0, bytes.Clone(r.Body))
			}
			ch <- g
		})
	if err != nil {
		return Delivery{}, 0, false
	}
	g := <-ch
	if g.err != nil || !g.res.Found {
		return Delivery{}, 0, false
	}
	q.delivered.Add(1)
	if noAck {
		q.acked.Add(1)
	}
	return quorumDelivery(g.m, 0, pid, g.res.DeliveryCount), g.res.Count, true
}

// settle proposes one command per consumer for ds.
func (q *Quorum) settle(t quorum.CommandType, ds []Delivery) {
	for i := 0; i < len(ds); {
		_, pid := ds[i].quorumIDs()
		var ids []uint64
		j := i
		for ; j < len(ds); j++ {
			id, p := ds[j].quorumIDs()
			if p != pid {
				break
			}
			ids = append(ids, id)
		}
		_ = q.group.Propose(&quorum.Command{Type: t, Consumer: quorum.ConsumerID{Pid: pid}, MsgIDs: ids}, nil)
		i = j
	}
}

// Ack settles deliveries.
func (q *Quorum) Ack(ds []Delivery) {
	q.acked.Add(uint64(len(ds)))
	q.settle(quorum.CmdSettle, ds)
}

// Reject discards deliveries: dead-lettered, or dropped.
func (q *Quorum) Reject(ds []Delivery) { q.settle(quorum.CmdDiscard, ds) }

// Requeue returns deliveries to the back of the queue, counting a
// delivery each (x-delivery-count).
func (q *Quorum) Requeue(ds []Delivery) { q.settle(quorum.CmdReturn, ds) }

// Purge drops the ready messages and returns how many.
func (q *Quorum) Purge() int { return q.wait(&quorum.Command{Type: quorum.CmdPurge}).Count }

// Delete removes the group and cancels the consumers; it returns the
// number of ready messages.
func (q *Quorum) Delete() int {
	q.mu.Lock()
	if q.deleted {
		q.mu.Unlock()
		return 0
	}
	q.deleted = true
	q.stopTimersLocked()
	ready := q.group.Stats().Ready
	q.node.mu.Lock()
	delete(q.node.queues, q.group.ID())
	q.node.mu.Unlock()
	_ = q.node.node.Remove(q.group.ID())
	for c := range q.consumers {
		c.Cancel(q)
	}
	clear(q.consumers)
	clear(q.byPid)
	q.mu.Unlock()
	return ready
}

// Stats returns the counters as of the last command applied.
func (q *Quorum) Stats() Stats {
	st := q.group.Stats()
	return Stats{
		Ready: st.Ready, ReadyBytes: st.ReadyBytes, Unacked: st.Live - st.Ready, Consumers: st.Consumers,
		Published: q.published.Load(), Delivered: q.delivered.Load(), Acked: q.acked.Load(), DeadLettered: q.deadLettered.Load(),
	}
}

func (q *Quorum) stopTimers() {
	q.mu.Lock()
	q.deleted = true // nothing re-arms them
	q.stopTimersLocked()
	q.mu.Unlock()
}

func (q *Quorum) stopTimersLocked() {
	if q.expiry != nil {
		q.expiry.Stop()
	}
	if q.unused != nil {
		q.unused.Stop()
	}
}
