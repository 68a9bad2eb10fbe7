package quorum

import (
	"errors"
	"fmt"
	"slices"
)

// Overflow is what happens when a publish would pass the queue's limits.
type Overflow uint8

// The overflow modes of quorum queues.
const (
	DropHead      Overflow = iota // dead-letter the oldest ready messages (maxlen)
	RejectPublish                 // refuse the publish (basic.nack to the publisher)
)

// Config is a queue's fixed settings (x-max-length, x-max-length-bytes,
// x-overflow, x-delivery-limit, x-message-ttl, x-single-active-consumer).
// For the three limits zero means none and a negative value a limit of 0.
type Config struct {
	MaxLength     int64
	MaxBytes      int64
	Overflow      Overflow
	DeliveryLimit int64
	// MessageTTL (ms) applies when HasTTL: 0 is a valid TTL.
	MessageTTL int64
	HasTTL     bool
	// SingleActive delivers to one consumer at a time: the oldest.
	SingleActive bool
}

// DeadLetterReason is why a message was dead-lettered, as x-death says it.
type DeadLetterReason uint8

// The reasons a quorum queue dead-letters.
const (
	Rejected      DeadLetterReason = iota + 1 // "rejected"
	DeliveryLimit                             // "delivery_limit"
	MaxLen                                    // "maxlen"
	Expired                                   // "expired"
)

func (r DeadLetterReason) String() string {
	switch r {
	case Rejected:
		return "rejected"
	case DeliveryLimit:
		return "delivery_limit"
	case MaxLen:
		return "maxlen"
	case Expired:
		return "expired"
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// EffectType is what the caller must do.
type EffectType uint8

// The effects a command produces.
const (
	EffDeliver    EffectType = iota + 1 // send message MsgID to Consumer
	EffDeadLetter                       // route Body to the dead-letter exchange for Reason
	EffRelease                          // snapshot Snapshot at raft Index and compact the log up to it
)

// Effect is one thing the queue asks its caller to do once a command is
// applied. Bodies alias the log's entries: copy to keep them.
type Effect struct {
	Type          EffectType
	Consumer      ConsumerID
	MsgID         uint64
	DeliveryCount uint32 // x-delivery-count; 0 on a first delivery
	Body          []byte
	Reason        DeadLetterReason
	Index         uint64 // the message's raft index; for a release, the snapshot's
	Snapshot      []byte
}

// Result is a command's answer to whoever proposed it.
type Result struct {
	Rejected bool // an enqueue refused by x-overflow reject-publish
	Count    int  // purge: messages purged; dequeue: messages left ready
	// Dequeue: whether a message was taken, and which. Body aliases the
	// log: valid only during the callback.
	Found         bool
	MsgID         uint64
	DeliveryCount uint32
	Body          []byte
	Err           error
}

// Errors in Result.Err.
var (
	ErrUnknownConsumer = errors.New("quorum: unknown consumer")
	ErrConsumerExists  = errors.New("quorum: consumer tag in use")
)

// message is a message in the queue. Its body lives in the raft entry at
// index; a state restored from a snapshot has no bodies for the messages
// it holds (the release rule guarantees the log settles them all again).
type message struct {
	index         uint64
	deliveryCount uint32
	size          uint32
	expiry        int64 // unix ms; 0: never
	body          []byte
}

type consumer struct {
	id        ConsumerID
	prefetch  uint32 // 0: unlimited
	priority  int32
	nextMsgID uint64
	checked   map[uint64]*message
	cancelled bool
}

func (c *consumer) canTake() bool {
	return !c.cancelled && (c.prefetch == 0 || uint32(len(c.checked)) < c.prefetch)
}

// candidate is a snapshot waiting to become a release point: it is
// released once the messages it holds (all with a raft index at or below
// index) are gone.
type candidate struct {
	index     uint64
	remaining int
	data      []byte
}

// Tuning of release points.
const (
	releaseInterval = 1024 // commands between candidates (or the message count, if larger)
	releaseEmpty    = 64   // commands after which an emptied queue releases at once
	maxCandidates   = 4
)

// State is a quorum queue as a deterministic state machine, after RabbitMQ's
// rabbit_fifo: the same commands at the same indexes give the same state and
// effects on every member.
type State struct {
	cfg        Config
	messages   fifo // ready, never returned
	returns    fifo // ready again after a return, served first
	readyBytes int64
	live       int // ready + checked out
	consumers  map[ConsumerID]*consumer
	order      []*consumer // checkout order: round-robin and every deterministic walk
	next       int         // round-robin position in order

	applied uint64
	// now is the latest clock a command carried (unix ms): expiry is
	// judged by it, never by the local clock, so members agree.
	now            int64
	candidates     []candidate
	sinceCandidate int
	candidateDue   bool // a candidate is taken when the entry at applied ends
	scratch        []uint64
}

// New returns an empty queue.
func New(cfg Config) *State {
	return &State{cfg: cfg, consumers: make(map[ConsumerID]*consumer)}
}

// Config returns the queue's settings.
func (s *State) Config() Config { return s.cfg }

// Ready is the number of messages waiting for a consumer.
func (s *State) Ready() int { return s.messages.len() + s.returns.len() }

// ReadyBytes is the body size of the ready messages.
func (s *State) ReadyBytes() int64 { return s.readyBytes }

// Consumers is the number of consumers, counting cancelled ones that
// still hold messages and basic.get's one-shot consumers, as RabbitMQ
// counts them.
func (s *State) Consumers() int { return len(s.order) }

// NextExpiry is when the message at the head expires (unix ms), 0 if it
// does not: a CmdExpire at that time makes it go.
func (s *State) NextExpiry() int64 {
	if s.returns.len() > 0 {
		return s.returns.peek().expiry
	}
	if s.messages.len() > 0 {
		return s.messages.peek().expiry
	}
	return 0
}

// Live is the number of messages in the queue, delivered or not.
func (s *State) Live() int { return s.live }

// Applied is the raft index of the last command applied.
func (s *State) Applied() uint64 { return s.applied }

// Pids returns the channels that have consumers, in checkout order.
func (s *State) Pids() []uint64 {
	var out []uint64
	for _, c := range s.order {
		if !slices.Contains(out, c.id.Pid) {
			out = append(out, c.id.Pid)
		}
	}
	return out
}

// Apply applies the command at raft index. Effects are appended to eff.
func (s *State) Apply(index uint64, cmd *Command, eff []Effect) (Result, []Effect) {
	if index != s.applied {
		// The commands of one raft entry share its index, and a replay
		// resumes after a snapshot's index: so a candidate is taken only
		// between entries, once every command at s.applied is in it.
		s.candidate()
	}
	s.applied = index
	var res Result
	switch cmd.Type {
	case CmdEnqueue:
		s.tick(cmd.Time)
		res.Rejected = s.enqueue(index, cmd, &eff)
	case CmdExpire:
		s.tick(cmd.Time)
		s.expireHead(&eff)
	case CmdDequeue:
		s.tick(cmd.Time)
		if _, ok := s.consumers[cmd.Consumer]; ok {
			res.Err = ErrConsumerExists
			break
		}
		s.expireHead(&eff)
		if s.Ready() == 0 {
			break
		}
		m := s.popReady()
		res.Found, res.DeliveryCount, res.Body = true, m.deliveryCount, m.body
		if cmd.Settled {
			s.remove(m)
		} else {
			// A one-shot consumer holds it until it is settled, as
			// rabbit_fifo's dequeue: it counts as a consumer meanwhile.
			c := &consumer{id: cmd.Consumer, cancelled: true, nextMsgID: 1, checked: map[uint64]*message{0: m}}
			s.consumers[c.id] = c
			s.order = append(s.order, c)
		}
		res.Count = s.Ready()
	case CmdCheckout:
		if _, ok := s.consumers[cmd.Consumer]; ok {
			res.Err = ErrConsumerExists
			break
		}
		c := &consumer{id: cmd.Consumer, prefetch: cmd.Prefetch, priority: cmd.Priority, checked: make(map[uint64]*message)}
		s.consumers[c.id] = c
		s.order = append(s.order, c)
	case CmdCancel:
		c := s.consumers[cmd.Consumer]
		if c == nil {
			res.Err = ErrUnknownConsumer
			break
		}
		c.cancelled = true
		s.forgetIfDone(c)
	case CmdSettle, CmdReturn, CmdDiscard:
		c := s.consumers[cmd.Consumer]
		if c == nil {
			res.Err = ErrUnknownConsumer
			break
		}
		for _, id := range cmd.MsgIDs {
			m := c.checked[id]
			if m == nil {
				continue // settled already, as rabbit_fifo ignores it
			}
			delete(c.checked, id)
			switch cmd.Type {
			case CmdSettle:
				s.remove(m)
			case CmdReturn:
				s.giveBack(m, &eff)
			case CmdDiscard:
				s.deadLetter(m, Rejected, &eff)
			}
		}
		s.forgetIfDone(c)
	case CmdPurge:
		for s.Ready() > 0 {
			s.remove(s.popReady())
			res.Count++
		}
	case CmdDown:
		for _, c := range slices.Clone(s.order) {
			if c.id.Pid != cmd.Pid {
				continue
			}
			// Messages return in the order they were delivered.
			ids := s.scratch[:0]
			for id := range c.checked {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			for _, id := range ids {
				m := c.checked[id]
				delete(c.checked, id)
				s.giveBack(m, &eff)
			}
			s.scratch = ids[:0]
			c.cancelled = true
			s.forgetIfDone(c)
		}
	}
	eff = s.deliver(eff)
	eff = s.release(eff)
	return res, eff
}

// tick moves the state's clock forward to a command's time.
func (s *State) tick(t int64) {
	if t > s.now {
		s.now = t
	}
}

// expireHead dead-letters the messages at the head whose TTL ran out: as in
// rabbit_fifo, a message expires when it reaches the head.
func (s *State) expireHead(eff *[]Effect) {
	for {
		var f *fifo
		switch {
		case s.returns.len() > 0:
			f = &s.returns
		case s.messages.len() > 0:
			f = &s.messages
		default:
			return
		}
		m := f.peek()
		if m.expiry == 0 || m.expiry > s.now {
			return
		}
		s.deadLetter(s.popReady(), Expired, eff)
	}
}

func (s *State) enqueue(index uint64, cmd *Command, eff *[]Effect) (rejected bool) {
	body := cmd.Body
	size := int64(cmd.Size)
	if s.cfg.Overflow == RejectPublish &&
		(over(int64(s.Ready()), s.cfg.MaxLength) || over(s.readyBytes, s.cfg.MaxBytes)) {
		// As rabbit_fifo: refused once the queue is over its limit, so
		// the publish that takes it over is still accepted.
		return true
	}
	m := &message{index: index, size: uint32(size), body: body}
	ttl, has := cmd.TTL, cmd.HasTTL
	if s.cfg.HasTTL && (!has || s.cfg.MessageTTL < ttl) {
		ttl, has = s.cfg.MessageTTL, true
	}
	if has {
		m.expiry = max(cmd.Time+ttl, 1)
	}
	s.messages.push(m)
	s.readyBytes += size
	s.live++
	if s.cfg.Overflow == DropHead {
		for s.Ready() > 0 && (over(int64(s.Ready()), s.cfg.MaxLength) || over(s.readyBytes, s.cfg.MaxBytes)) {
			s.deadLetter(s.popReady(), MaxLen, eff)
		}
	}
	return false
}

// popReady takes the next ready message: returned ones first.
func (s *State) popReady() *message {
	var m *message
	if s.returns.len() > 0 {
		m = s.returns.pop()
	} else {
		m = s.messages.pop()
	}
	s.readyBytes -= int64(m.size)
	return m
}

// giveBack requeues a returned message, or dead-letters it past the
// delivery limit.
func (s *State) giveBack(m *message, eff *[]Effect) {
	m.deliveryCount++
	if s.cfg.DeliveryLimit != 0 && int64(m.deliveryCount) > max(s.cfg.DeliveryLimit, 0) {
		s.deadLetter(m, DeliveryLimit, eff)
		return
	}
	// Back of the queue, as RabbitMQ 3.10's quorum queues return it.
	s.messages.push(m)
	s.readyBytes += int64(m.size)
}

func (s *State) deadLetter(m *message, reason DeadLetterReason, eff *[]Effect) {
	*eff = append(*eff, Effect{Type: EffDeadLetter, Body: m.body, Reason: reason, Index: m.index, DeliveryCount: m.deliveryCount})
	s.remove(m)
}

// remove forgets a message that left the queue.
func (s *State) remove(m *message) {
	s.live--
	for i := range s.candidates {
		if m.index <= s.candidates[i].index {
			s.candidates[i].remaining--
		}
	}
}

// forgetIfDone drops a cancelled consumer once nothing is checked out to it.
func (s *State) forgetIfDone(c *consumer) {
	if !c.cancelled || len(c.checked) > 0 {
		return
	}
	delete(s.consumers, c.id)
	i := slices.Index(s.order, c)
	s.order = slices.Delete(s.order, i, i+1)
	if s.next > i {
		s.next--
	}
	if s.next >= len(s.order) {
		s.next = 0
	}
}

// deliver hands ready messages to consumers with room: the highest
// priority first, round-robin among equals; with SingleActive only the
// oldest consumer gets any.
func (s *State) deliver(eff []Effect) []Effect {
	for s.Ready() > 0 {
		c := s.pick()
		if c == nil {
			break
		}
		s.expireHead(&eff)
		if s.Ready() == 0 {
			break
		}
		m := s.popReady()
		id := c.nextMsgID
		c.nextMsgID++
		c.checked[id] = m
		eff = append(eff, Effect{Type: EffDeliver, Consumer: c.id, MsgID: id, DeliveryCount: m.deliveryCount, Body: m.body, Index: m.index})
	}
	return eff
}

// pick chooses the consumer of the next message, or nil.
func (s *State) pick() *consumer {
	if s.cfg.SingleActive {
		for _, c := range s.order {
			if !c.cancelled {
				if c.canTake() {
					return c
				}
				return nil
			}
		}
		return nil
	}
	var best *consumer
	bestK := 0
	for i := 0; i < len(s.order); i++ {
		k := (s.next + i) % len(s.order)
		c := s.order[k]
		if c.canTake() && (best == nil || c.priority > best.priority) {
			best, bestK = c, k
		}
	}
	if best != nil {
		s.next = (bestK + 1) % len(s.order)
	}
	return best
}

// candidate records the snapshot candidate that release found due, at
// s.applied.
func (s *State) candidate() {
	if s.candidateDue {
		s.candidates = append(s.candidates, candidate{index: s.applied, remaining: s.live, data: s.Snapshot()})
		s.sinceCandidate = 0
		s.candidateDue = false
	}
}

// release finds a snapshot candidate due now and then (taken at the end of
// the entry), and emits the newest candidate whose messages are all gone:
// the log up to it can go.
func (s *State) release(eff []Effect) []Effect {
	s.sinceCandidate++
	interval := max(releaseInterval, s.live)
	if (s.sinceCandidate >= interval || (s.live == 0 && s.sinceCandidate >= releaseEmpty)) && len(s.candidates) < maxCandidates {
		s.candidateDue = true
	}
	if s.candidateDue {
		// Wait for it: once taken it may be the newest releasable one
		// (an emptied queue), and a release at most an entry later costs
		// nothing.
		return eff
	}
	n := -1
	for i := range s.candidates {
		if s.candidates[i].remaining == 0 {
			n = i
		}
	}
	if n >= 0 {
		c := s.candidates[n]
		eff = append(eff, Effect{Type: EffRelease, Index: c.index, Snapshot: c.data})
		s.candidates = slices.Delete(s.candidates, 0, n+1)
	}
	return eff
}

// over reports whether n is past a limit (0: none; negative: a limit of 0).
func over(n, limit int64) bool {
	switch {
	case limit > 0:
		return n > limit
	case limit < 0:
		return n > 0
	}
	return false
}
