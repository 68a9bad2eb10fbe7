package amqp

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/event"
	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/vhost"
)

// channel is one AMQP channel. Its methods run on the connection's reader
// goroutine, except deliver and the queue callbacks, which queues call with
// their own lock held; those touch only the fields under mu.
type channel struct {
	c  *conn
	id uint16
	// pid names the channel in events; unique in the node, unlike id.
	pid uint64

	// closing is set once channel.close went out (by the reader, or by the
	// consumer-timeout timer); the reader then waits for close-ok.
	closing atomic.Bool

	// Reader goroutine only.
	pub        pending
	props      wire.Properties
	scratch    vhost.Scratch
	confirm    bool
	publishSeq uint64
	// Publisher confirms settled, guarded by the connection's outMu: every
	// tag up to confirmedTo, and those above it in early (out of order).
	confirmedTo uint64
	early       []uint64
	tx          *txState
	prefetch    int    // basic.qos global=false: limit for consumers made after it
	lastQueue   string // the "current queue" of queue.declare, for empty names

	counts        channelCounts
	countsRetired bool // guarded by the server's totals.mu: counts folded into its totals

	mu        sync.Mutex // guards the fields below
	consumers map[string]*consumer
	unacked   []unacked // ordered by tag
	// settled is settleNow's reused buffer of what an ack took (reader
	// goroutine only).
	settled []unacked
	nextTag uint64
	// globalPrefetch is basic.qos global=true: a limit shared by the
	// channel's consumers; globalUnacked counts against it.
	globalPrefetch int
	globalUnacked  int
	flowActive     bool
	released       bool   // closed: deliveries are refused
	replyTag       string // the direct reply-to consumer, if any
	replyToken     string
	// cancelledSAC are the single-active-consumer queues a consumer of
	// this channel was cancelled on: the channel's close runs them, which
	// is when RabbitMQ hands such a queue to the next consumer. Each queue
	// once; they are few.
	cancelledSAC []queue.Interface
	// timeoutTimer checks the consumer ack timeout while deliveries are
	// unacked; nil when none is pending.
	timeoutTimer *time.Timer
}

// pending is a basic.publish whose content is being received.
type pending struct {
	active    bool
	exchange  string
	key       string
	mandatory bool
	gotHeader bool
	size      uint64
	props     []byte
	body      []byte
}

// unacked is a delivery waiting for ack, nack or reject.
type unacked struct {
	tag      uint64
	q        queue.Interface
	d        queue.Delivery
	consumer *consumer // nil for basic.get
	// due is when the consumer ack timeout runs out (unix nanoseconds).
	due int64
}

// trackLocked records an unacked delivery and makes sure the ack timeout
// is being watched.
func (ch *channel) trackLocked(u unacked) {
	timeout := ch.c.srv.cfg.ConsumerTimeout
	if t := u.q.Config().ConsumerTimeout; t > 0 {
		timeout = t
	}
	if timeout > 0 {
		u.due = time.Now().Add(timeout).UnixNano()
		if ch.timeoutTimer == nil {
			ch.timeoutTimer = time.AfterFunc(timeout, ch.checkTimeouts)
		}
	}
	ch.unacked = append(ch.unacked, u)
}

// checkTimeouts closes the channel if a delivery stayed unacked past its
// timeout, as RabbitMQ does (its messages go back to their queues).
func (ch *channel) checkTimeouts() {
	ch.mu.Lock()
	now := time.Now().UnixNano()
	var next int64
	var late *unacked
	for i := range ch.unacked {
		u := &ch.unacked[i]
		if u.due == 0 {
			continue
		}
		if u.due <= now {
			late = u
			break
		}
		if next == 0 || u.due < next {
			next = u.due
		}
	}
	var timeout time.Duration
	if late != nil {
		timeout = ch.c.srv.cfg.ConsumerTimeout
		if t := late.q.Config().ConsumerTimeout; t > 0 {
			timeout = t
		}
	}
	switch {
	case ch.released:
		ch.timeoutTimer = nil
	case late != nil:
		ch.timeoutTimer = nil
	case next != 0:
		ch.timeoutTimer.Reset(time.Duration(next - now))
	default:
		ch.timeoutTimer = nil
	}
	ch.mu.Unlock()
	if late != nil {
		ch.fail(&protoError{code: wire.PreconditionFailed, text: fmt.Sprintf(
			"delivery acknowledgement on channel %d timed out. Timeout value used: %d ms. "+
				"This timeout value can be configured, see consumers doc guide to learn more", ch.id, timeout.Milliseconds())})
	}
}

func newChannel(c *conn, id uint16) *channel {
	return &channel{c: c, id: id, pid: c.srv.nextID.Add(1), consumers: make(map[string]*consumer), flowActive: true}
}

// handleMethod runs one method; a returned soft error has already been
// turned into channel.close, a hard one closes the connection.
func (ch *channel) handleMethod(m wire.Method) error {
	if ch.closing.Load() {
		// After channel.close only close-ok (or a crossing close) counts.
		// A crossing close is answered, but the channel stays until the
		// client's close-ok for our close, as in RabbitMQ: the client
		// sends that close-ok too, and it must not find the channel gone.
		switch m.(type) {
		case *wire.ChannelCloseOk:
			ch.c.removeChannel(ch.id)
		case *wire.ChannelClose:
			ch.c.sendRaw(&wire.ChannelCloseOk{}, ch.id)
		}
		return nil
	}
	if ch.pub.active {
		ch.pub = pending{}
		return methodError(m, wire.UnexpectedFrame, "expected content header for class 60, got non content header frame instead")
	}
	err := ch.dispatch(m)
	if err == nil {
		return nil
	}
	pe := asProtoError(err)
	if pe.classID == 0 {
		pe.classID, pe.methodID = m.ClassID(), m.MethodID()
	}
	if pe.hard() {
		return pe
	}
	ch.fail(pe)
	return nil
}

// fail closes the channel with a soft error. It may run on the reader or on
// the consumer-timeout timer.
func (ch *channel) fail(pe *protoError) {
	if ch.closing.Swap(true) {
		return
	}
	ch.c.log.Debug("closing channel", "channel", ch.id, "code", pe.code, "reason", pe.text)
	ch.release()
	ch.c.sendRaw(&wire.ChannelClose{ReplyCode: pe.code, ReplyText: pe.replyText(), FailingClassID: pe.classID, FailingMethodID: pe.methodID}, ch.id)
}

func (ch *channel) dispatch(m wire.Method) error {
	switch m := m.(type) {
	case *wire.ChannelOpen:
		return newError(wire.ChannelError, "second 'channel.open' seen")
	case *wire.ChannelClose:
		// Marked closing first: a publisher confirm still on its way from
		// the disk must not go out on a channel number the client may reuse.
		ch.closing.Store(true)
		ch.release()
		ch.c.sendRaw(&wire.ChannelCloseOk{}, ch.id)
		ch.c.removeChannel(ch.id)
		return nil
	case *wire.ChannelCloseOk:
		return nil
	case *wire.ChannelFlow:
		if !m.Active {
			// RabbitMQ 3.x refuses to stop deliveries this way.
			return newError(wire.NotImplemented, "active=false")
		}
		ch.setFlow(m.Active)
		ch.c.sendRaw(&wire.ChannelFlowOk{Active: m.Active}, ch.id)
		return nil
	case *wire.ChannelFlowOk:
		return nil

	case *wire.ExchangeDeclare:
		return ch.exchangeDeclare(m)
	case *wire.ExchangeDelete:
		return ch.exchangeDelete(m)
	case *wire.ExchangeBind:
		return ch.exchangeBind(m.Destination, m.Source, m.RoutingKey, m.Arguments, false, m.NoWait, &wire.ExchangeBindOk{})
	case *wire.ExchangeUnbind:
		return ch.exchangeBind(m.Destination, m.Source, m.RoutingKey, m.Arguments, true, m.NoWait, &wire.ExchangeUnbindOk{})

	case *wire.QueueDeclare:
		return ch.queueDeclare(m)
	case *wire.QueueBind:
		return ch.queueBind(m.Queue, m.Exchange, m.RoutingKey, m.Arguments, false, m.NoWait)
	case *wire.QueueUnbind:
		return ch.queueBind(m.Queue, m.Exchange, m.RoutingKey, m.Arguments, true, false)
	case *wire.QueuePurge:
		return ch.queuePurge(m)
	case *wire.QueueDelete:
		return ch.queueDelete(m)

	case *wire.BasicQos:
		return ch.basicQos(m)
	case *wire.BasicConsume:
		return ch.basicConsume(m)
	case *wire.BasicCancel:
		return ch.basicCancel(m)
	case *wire.BasicPublish:
		return ch.basicPublish(m)
	case *wire.BasicGet:
		return ch.basicGet(m)
	case *wire.BasicAck:
		return ch.settle(m.DeliveryTag, m.Multiple, settleAck)
	case *wire.BasicReject:
		if m.Requeue {
			return ch.settle(m.DeliveryTag, false, settleRequeue)
		}
		return ch.settle(m.DeliveryTag, false, settleDiscard)
	case *wire.BasicNack:
		if m.Requeue {
			return ch.settle(m.DeliveryTag, m.Multiple, settleRequeue)
		}
		return ch.settle(m.DeliveryTag, m.Multiple, settleDiscard)
	case *wire.BasicRecover:
		if err := ch.recover(m.Requeue); err != nil {
			return err
		}
		ch.c.sendRaw(&wire.BasicRecoverOk{}, ch.id)
		return nil
	case *wire.BasicRecoverAsync:
		return ch.recover(m.Requeue)

	case *wire.ConfirmSelect:
		if ch.tx != nil {
			return newError(wire.PreconditionFailed, "cannot switch from tx to confirm mode")
		}
		ch.confirm = true
		if !m.NoWait {
			ch.c.sendRaw(&wire.ConfirmSelectOk{}, ch.id)
		}
		return nil
	case *wire.TxSelect:
		if ch.confirm {
			return newError(wire.PreconditionFailed, "cannot switch from confirm to tx mode")
		}
		if ch.tx == nil {
			ch.tx = &txState{}
		}
		ch.c.sendRaw(&wire.TxSelectOk{}, ch.id)
		return nil
	case *wire.TxCommit:
		return ch.txCommit()
	case *wire.TxRollback:
		return ch.txRollback()
	}
	return newError(wire.CommandInvalid, "unexpected method %s on a channel", m.Name())
}

// setFlow pauses or resumes deliveries to this channel's consumers.
func (ch *channel) setFlow(active bool) {
	ch.mu.Lock()
	ch.flowActive = active
	ch.mu.Unlock()
	if active {
		ch.kick()
	}
}

// kick asks every queue this channel consumes from to try dispatching again.
func (ch *channel) kick() {
	var buf [4]queue.Interface // most channels consume from few queues: no allocation
	ch.mu.Lock()
	qs := buf[:0]
	for _, cs := range ch.consumers {
		if !containsQueue(qs, cs.q) {
			qs = append(qs, cs.q)
		}
	}
	ch.mu.Unlock()
	for _, q := range qs {
		q.Kick()
	}
}

func containsQueue(qs []queue.Interface, q queue.Interface) bool {
	for _, x := range qs {
		if x == q {
			return true
		}
	}
	return false
}

// release ends the channel's part in the broker: consumers leave their
// queues and unacked messages go back, as RabbitMQ does when a channel closes.
func (ch *channel) release() {
	ch.mu.Lock()
	if ch.released {
		ch.mu.Unlock()
		return
	}
	ch.released = true
	ch.c.srv.totals.retire(ch)
	consumers := make([]*consumer, 0, len(ch.consumers))
	for _, cs := range ch.consumers {
		consumers = append(consumers, cs)
	}
	ch.consumers = map[string]*consumer{}
	pending := ch.unacked
	ch.unacked = nil
	token := ch.replyToken
	run := ch.cancelledSAC
	ch.cancelledSAC = nil
	ch.mu.Unlock()

	if token != "" {
		ch.c.vh.UnregisterReplyTo(token)
	}
	for _, cs := range consumers {
		ch.emitConsumerDeleted(cs, event.Internal)
		ch.c.vh.ConsumerGone(cs.q, cs)
	}
	requeueAll(pending)
	// A channel going away runs its queues, even with nothing to requeue:
	// with single active consumer, that hands the queue to the next
	// consumer (RabbitMQ's channel-down does the same).
	for _, cs := range consumers {
		if !containsQueue(run, cs.q) {
			run = append(run, cs.q)
		}
	}
	for _, q := range run {
		q.Handover()
	}
	if ch.tx != nil {
		ch.tx = nil
		ch.counts.txReset()
	}
	ch.emitClosed()
}

// requeueAll returns deliveries to their queues, one call per run of the
// same queue.
func requeueAll(us []unacked) {
	forEachQueue(us, func(q queue.Interface, ds []queue.Delivery) { q.Requeue(ds) })
}

// forEachQueue groups deliveries by queue, keeping their order.
func forEachQueue(us []unacked, fn func(q queue.Interface, ds []queue.Delivery)) {
	var ds []queue.Delivery
	for i := 0; i < len(us); {
		q := us[i].q
		ds = ds[:0]
		for j := i; j < len(us); j++ {
			if us[j].q == q && us[j].tag != 0 {
				ds = append(ds, us[j].d)
				us[j].tag = 0 // taken
			}
		}
		fn(q, ds)
		for i < len(us) && us[i].tag == 0 {
			i++
		}
	}
}

type settleKind uint8

const (
	settleAck settleKind = iota
	settleRequeue
	settleDiscard
)

// settle handles ack, nack and reject.
func (ch *channel) settle(tag uint64, multiple bool, kind settleKind) error {
	if ch.tx != nil {
		// Inside a transaction, settlements wait for commit; the tag must be
		// valid now.
		ch.mu.Lock()
		ok := (multiple && tag == 0) || ch.findLocked(tag) >= 0
		ch.mu.Unlock()
		if !ok {
			return newError(wire.PreconditionFailed, "unknown delivery tag %d", tag)
		}
		ch.tx.settles = append(ch.tx.settles, txSettle{tag: tag, multiple: multiple, kind: kind})
		ch.counts.txSettles.Add(1)
		return nil
	}
	return ch.settleNow(tag, multiple, kind)
}

func (ch *channel) settleNow(tag uint64, multiple bool, kind settleKind) error {
	ch.mu.Lock()
	taken, ok := ch.takeLocked(ch.settled[:0], tag, multiple)
	ch.mu.Unlock()
	if !ok {
		return newError(wire.PreconditionFailed, "unknown delivery tag %d", tag)
	}
	defer func() {
		// Keep the buffer, not the messages it pointed to.
		clear(taken)
		ch.settled = taken[:0]
	}()
	switch kind {
	case settleAck:
		ch.counts.acked.Add(uint64(len(taken)))
		forEachQueue(taken, func(q queue.Interface, ds []queue.Delivery) { q.Ack(ds) })
	case settleDiscard:
		forEachQueue(taken, func(q queue.Interface, ds []queue.Delivery) { q.Reject(ds) })
	case settleRequeue:
		requeueAll(taken)
	}
	ch.kick()
	return nil
}

// findLocked returns the index of tag in unacked, or -1.
func (ch *channel) findLocked(tag uint64) int {
	i := sort.Search(len(ch.unacked), func(i int) bool { return ch.unacked[i].tag >= tag })
	if i < len(ch.unacked) && ch.unacked[i].tag == tag {
		return i
	}
	return -1
}

// takeLocked removes the deliveries an ack names: one tag, or with multiple
// every tag up to it (0 meaning all). It fails for a tag not outstanding.
func (ch *channel) takeLocked(taken []unacked, tag uint64, multiple bool) ([]unacked, bool) {
	if multiple {
		n := len(ch.unacked)
		if tag != 0 {
			n = sort.Search(len(ch.unacked), func(i int) bool { return ch.unacked[i].tag > tag })
			if n == 0 || ch.unacked[n-1].tag != tag {
				// RabbitMQ accepts a multiple ack for a tag below the highest
				// outstanding one only if that tag itself is outstanding.
				if ch.findLocked(tag) < 0 {
					return nil, false
				}
			}
		}
		taken = append(taken, ch.unacked[:n]...)
		ch.unacked = append(ch.unacked[:0], ch.unacked[n:]...)
	} else {
		i := ch.findLocked(tag)
		if i < 0 {
			return nil, false
		}
		taken = append(taken, ch.unacked[i])
		if i == 0 {
			// Acks mostly come in order: drop the head without moving
			// the window of unacked deliveries down by one.
			ch.unacked[0] = unacked{}
			ch.unacked = ch.unacked[1:]
		} else {
			ch.unacked = append(ch.unacked[:i], ch.unacked[i+1:]...)
		}
	}
	for _, u := range taken {
		if u.consumer != nil {
			u.consumer.unacked--
			ch.globalUnacked--
		}
	}
	return taken, true
}

func (ch *channel) recover(requeue bool) error {
	if !requeue {
		return newError(wire.NotImplemented, "requeue=false")
	}
	ch.mu.Lock()
	taken, _ := ch.takeLocked(nil, 0, true)
	ch.mu.Unlock()
	requeueAll(taken)
	ch.kick()
	return nil
}

func (ch *channel) basicQos(m *wire.BasicQos) error {
	if m.PrefetchSize != 0 {
		return newError(wire.NotImplemented, "prefetch_size!=0 (%d)", m.PrefetchSize)
	}
	if m.Global {
		ch.mu.Lock()
		ch.globalPrefetch = int(m.PrefetchCount)
		ch.mu.Unlock()
		ch.kick()
	} else {
		ch.prefetch = int(m.PrefetchCount)
		ch.counts.prefetch.Store(int64(m.PrefetchCount))
	}
	ch.c.sendRaw(&wire.BasicQosOk{}, ch.id)
	return nil
}

// txState is what a transactional channel holds until commit.
type txState struct {
	publishes []vhost.Publishing
	mandatory []bool
	settles   []txSettle
}

type txSettle struct {
	tag      uint64
	multiple bool
	kind     settleKind
}

func (ch *channel) txCommit() error {
	if ch.tx == nil {
		return newError(wire.PreconditionFailed, "channel is not transactional")
	}
	tx := ch.tx
	ch.tx = &txState{}
	ch.counts.txReset()
	// commit-ok means the publishes are where they must be: on disk for
	// persistent messages in durable queues.
	var wg sync.WaitGroup
	for i := range tx.publishes {
		wg.Add(1)
		r, err := ch.route(&tx.publishes[i], tx.mandatory[i], func(error) { wg.Done() })
		if err != nil {
			return err
		}
		if !r.Stored {
			wg.Done()
		}
	}
	wg.Wait()
	for _, s := range tx.settles {
		if err := ch.settleNow(s.tag, s.multiple, s.kind); err != nil {
			return err
		}
	}
	ch.c.sendRaw(&wire.TxCommitOk{}, ch.id)
	return nil
}

func (ch *channel) txRollback() error {
	if ch.tx == nil {
		return newError(wire.PreconditionFailed, "channel is not transactional")
	}
	ch.tx = &txState{}
	ch.counts.txReset()
	ch.c.sendRaw(&wire.TxRollbackOk{}, ch.id)
	return nil
}
