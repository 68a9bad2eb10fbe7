package amqp

import (
	"encoding/binary"
	"slices"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/vhost"
)

// replyToQueue is RabbitMQ's direct reply-to pseudo-queue.
const replyToQueue = "amq.rabbitmq.reply-to"

func (ch *channel) basicPublish(m *wire.BasicPublish) error {
	if m.Immediate {
		return newError(wire.NotImplemented, "immediate=true")
	}
	if err := ch.checkAccess(broker.Write, "exchange", m.Exchange); err != nil {
		return err
	}
	if err := ch.checkTopic(broker.Write, m.Exchange, m.RoutingKey); err != nil {
		return err
	}
	ch.pub = pending{active: true, exchange: m.Exchange, key: m.RoutingKey, mandatory: m.Mandatory}
	ch.c.publisher = true
	return nil
}

// handleContent assembles the header and body frames of a publish.
func (ch *channel) handleContent(f wire.Frame) error {
	if ch.closing.Load() {
		return nil // the client may still be sending content for a publish we refused
	}
	p := &ch.pub
	if !p.active {
		return newError(wire.UnexpectedFrame, "expected method frame, got non method frame instead")
	}
	if f.Type == wire.FrameHeader {
		if p.gotHeader {
			return newError(wire.UnexpectedFrame, "expected content body, got non content body frame instead")
		}
		classID, size, props, err := wire.ParseContentHeader(f.Payload)
		if err != nil {
			return newError(wire.FrameError, "%v", err)
		}
		if classID != wire.ClassBasic {
			// As rabbit_command_assembler: the header must be basic.publish's class.
			return methodError(&wire.BasicPublish{}, wire.UnexpectedFrame, "expected content header for class %d, got one for class %d instead", wire.ClassBasic, classID)
		}
		if limit := ch.c.srv.cfg.MaxMessageSize; limit > 0 && size > limit {
			pe := newError(wire.PreconditionFailed, "message size %d is larger than configured max size %d", size, limit)
			pe.classID, pe.methodID = wire.ClassBasic, 40
			ch.fail(pe)
			return nil
		}
		// One allocation holds the properties and the body; the message
		// keeps it, the frame buffer is reused.
		buf := make([]byte, len(props), len(props)+int(min(size, 1<<20)))
		copy(buf, props)
		p.props = buf
		p.body = buf[len(props):]
		p.size = size
		p.gotHeader = true
	} else {
		if !p.gotHeader {
			return newError(wire.UnexpectedFrame, "expected content header for class 60, got non content header frame instead")
		}
		if uint64(len(p.body)+len(f.Payload)) > p.size {
			return newError(wire.FrameError, "content body exceeds the size in its header")
		}
		p.body = append(p.body, f.Payload...)
	}
	if uint64(len(p.body)) < p.size {
		return nil
	}
	msg := &queue.Message{Exchange: p.exchange, RoutingKey: p.key, Properties: p.props, Body: p.body}
	mandatory := p.mandatory
	ch.pub = pending{}
	if err := ch.publish(msg, mandatory); err != nil {
		pe := asProtoError(err)
		if pe.classID == 0 {
			pe.classID, pe.methodID = wire.ClassBasic, 40
		}
		if pe.hard() {
			return pe
		}
		ch.fail(pe)
	}
	// Flow control: a publisher whose messages the disk cannot keep up
	// with is read no faster than it can (see storage.Store.Throttle).
	if ch.c.srv.broker.Throttling() {
		ch.c.endRun() // nobody else's output may wait while this reader is held
		ch.c.srv.broker.Throttle()
	}
	return nil
}

// publish finishes a received message: reads the properties the broker acts
// on, then routes it now or at commit.
func (ch *channel) publish(msg *queue.Message, mandatory bool) error {
	ch.counts.received.Add(1)
	if ch.confirm {
		ch.counts.receivedConfirm.Add(1)
	}
	props := &ch.props
	if err := props.Decode(msg.Properties); err != nil {
		return newError(wire.FrameError, "cannot decode content header: %v", err)
	}
	msg.Persistent = props.DeliveryMode == 2
	msg.Priority = props.Priority
	if props.Expiration != "" {
		// An empty expiration means none, as in RabbitMQ.
		ttl, err := parseExpiration(props.Expiration)
		if err != nil {
			return newError(wire.PreconditionFailed, "invalid expiration '%s': %v", props.Expiration, err)
		}
		msg.Expiration, msg.HasExpiration = ttl, true
	}
	if props.Present&wire.FlagUserID != 0 && props.UserID != ch.c.user.Name() {
		return newError(wire.PreconditionFailed, "user_id property set to '%s' but authenticated user was '%s'", props.UserID, ch.c.user.Name())
	}
	p := vhost.Publishing{Exchange: msg.Exchange, RoutingKey: msg.RoutingKey, Message: msg, Owner: ch}
	p.Props = vhost.HashProperties(props)
	rewrite := false
	if props.Headers != nil {
		p.Headers = props.Headers
		p.CC = vhost.RoutingKeys(props.Headers["CC"])
		p.BCC = vhost.RoutingKeys(props.Headers["BCC"])
		if _, ok := props.Headers["BCC"]; ok {
			// Blind copies must not show: the header goes before delivery.
			delete(props.Headers, "BCC")
			rewrite = true
		}
	}
	if props.ReplyTo == replyToQueue {
		ch.mu.Lock()
		token := ch.replyToken
		ch.mu.Unlock()
		if token == "" {
			return newError(wire.PreconditionFailed, "fast reply consumer does not exist")
		}
		props.ReplyTo = vhost.ReplyToPrefix + token
		rewrite = true
	}
	if rewrite {
		msg.Properties = props.Append(make([]byte, 0, len(msg.Properties)+32))
	}
	if ch.tx != nil {
		ch.tx.publishes = append(ch.tx.publishes, p)
		ch.counts.txPublishes.Add(1)
		ch.tx.mandatory = append(ch.tx.mandatory, mandatory)
		return nil
	}
	var onDisk func(error)
	var seq uint64
	if ch.confirm {
		ch.publishSeq++
		seq = ch.publishSeq
		onDisk = func(err error) { ch.confirmPublish(seq, err) }
	}
	r, err := ch.route(&p, mandatory, onDisk)
	if err != nil {
		return err
	}
	if ch.confirm && !r.Stored {
		var err error
		if r.Refused > 0 {
			err = vhost.ErrRefused
		}
		ch.confirmPublish(seq, err)
	}
	return nil
}

// confirmPublish sends the publisher confirm for seq: ack once the message
// is where it must be (on disk, for persistent messages in durable queues),
// nack if a full queue refused it or the disk write failed. It may run on the
// storage committer goroutine.
//
// Consecutive acks coalesce, as RabbitMQ's do: when the last frame waiting
// to be written is this channel's ack and every tag up to seq is settled,
// that frame becomes basic.ack(seq, multiple). A publisher with a window of
// unconfirmed messages then learns of a whole group commit in one frame and
// refills its window in one burst.
func (ch *channel) confirmPublish(seq uint64, err error) {
	c := ch.c
	c.outMu.Lock()
	// closing is read under outMu: channel.close and close-ok are appended
	// under it after closing is set, so no confirm can follow them onto a
	// channel number the client may reuse.
	if !c.outClosed && !ch.closing.Load() {
		if err == nil {
			ch.counts.confirmed.Add(1)
		}
		ch.counts.settled.Add(1)
		ch.settleLocked(seq)
		switch {
		case err != nil:
			c.out = wire.AppendMethodFrame(c.out, ch.id, &wire.BasicNack{DeliveryTag: seq})
		case c.lastAck == len(c.out) && c.lastAckChannel == ch.id &&
			max(seq, ackTag(c.out[c.lastAck-ackFrameLen:c.lastAck])) <= ch.confirmedTo:
			// The frame may be a single ack for a tag that settled early,
			// above seq: the extended ack must still cover it, and may only
			// once every tag below it is settled.
			extendAck(c.out[c.lastAck-ackFrameLen:c.lastAck], seq)
		default:
			c.out = wire.AppendMethodFrame(c.out, ch.id, &wire.BasicAck{DeliveryTag: seq})
			c.lastAck, c.lastAckChannel = len(c.out), ch.id
		}
	}
	c.outMu.Unlock()
	c.signal()
}

// settleLocked records that seq's confirm is going out.
func (ch *channel) settleLocked(seq uint64) {
	if seq != ch.confirmedTo+1 {
		ch.early = append(ch.early, seq)
		return
	}
	ch.confirmedTo = seq
	for len(ch.early) > 0 {
		i := slices.Index(ch.early, ch.confirmedTo+1)
		if i < 0 {
			return
		}
		ch.early = slices.Delete(ch.early, i, i+1)
		ch.confirmedTo++
	}
}

// ackFrameLen is the size of a basic.ack frame: frame header (7), class and
// method (4), delivery tag (8), flags (1), frame end (1).
const ackFrameLen = 21

// extendAck rewrites an encoded basic.ack frame in place as
// basic.ack(max(its tag, tag), multiple). The caller has settled every tag
// up to both.
func extendAck(frame []byte, tag uint64) {
	binary.BigEndian.PutUint64(frame[11:19], max(tag, ackTag(frame)))
	frame[19] |= 1 // multiple
}

// ackTag is the delivery tag of an encoded basic.ack frame.
func ackTag(frame []byte) uint64 { return binary.BigEndian.Uint64(frame[11:19]) }

// route delivers one publish to its queues and returns it if it was
// mandatory and unroutable.
func (ch *channel) route(p *vhost.Publishing, mandatory bool, onDisk func(error)) (vhost.Routed, error) {
	r, err := ch.c.vh.Publish(p, &ch.scratch, onDisk)
	if err != nil {
		return r, err
	}
	if ch.c.vh.Tracing() {
		ch.tracePublish(p, ch.scratch.Routed)
	}
	switch {
	case r.Queues > 0 || r.Refused > 0:
		ch.counts.routed.Add(1)
	case mandatory:
		ch.counts.unroutableReturned.Add(1)
	default:
		ch.counts.unroutableDropped.Add(1)
	}
	if r.Queues == 0 && r.Refused == 0 && mandatory {
		m := p.Message
		ch.c.sendContent(&wire.BasicReturn{ReplyCode: wire.NoRoute, ReplyText: "NO_ROUTE", Exchange: m.Exchange, RoutingKey: m.RoutingKey}, ch.id, m.Properties, m.Body)
	}
	return r, nil
}

// consumer is one basic.consume on a channel; it implements queue.Consumer.
type consumer struct {
	ch       *channel
	tag      string
	q        queue.Interface
	noAck    bool
	prefetch int
	unacked  int  // guarded by ch.mu
	gone     bool // guarded by ch.mu: cancelled, takes nothing more
	// ready is set, under ch.mu, once consume-ok is in the outbound buffer:
	// a delivery must not overtake it.
	ready bool
}

// Deliver implements queue.Consumer; see channel.deliver.
func (cs *consumer) Deliver(q queue.Interface, d queue.Delivery) bool { return cs.ch.deliver(cs, d) }

// Prefetch implements queue.Prefetcher: a quorum queue's credit for it.
func (cs *consumer) Prefetch() int { return cs.prefetch }

// Cancel implements queue.Consumer: the queue was deleted.
func (cs *consumer) Cancel(q queue.Interface) { cs.ch.cancelledByQueue(cs) }

func (ch *channel) basicConsume(m *wire.BasicConsume) error {
	if m.Queue == replyToQueue {
		return ch.consumeReplyTo(m)
	}
	q, name, err := ch.readQueue(m.Queue)
	if err != nil {
		return err
	}
	if q.Declared().Type == queue.TypeQuorum {
		ch.mu.Lock()
		global := ch.globalPrefetch
		ch.mu.Unlock()
		if global > 0 {
			return newError(wire.NotImplemented, "queue '%s' in vhost '%s' does not support global qos", name, ch.c.vh.Name)
		}
	}
	tag := m.ConsumerTag
	if tag == "" {
		tag = generateName("amq.ctag-")
	}
	cs := &consumer{ch: ch, tag: tag, q: q, noAck: m.NoAck, prefetch: ch.prefetch}
	ch.mu.Lock()
	_, dup := ch.consumers[tag]
	if !dup {
		ch.consumers[tag] = cs
	}
	ch.mu.Unlock()
	if dup {
		return newError(wire.NotAllowed, "attempt to reuse consumer tag '%s'", tag)
	}
	priority, err := ch.c.vh.ConsumerPriority(name, m.Arguments)
	if err != nil {
		ch.mu.Lock()
		delete(ch.consumers, tag)
		ch.mu.Unlock()
		return err
	}
	if err := q.AddConsumer(cs, m.Exclusive, m.NoAck, priority); err != nil {
		ch.mu.Lock()
		delete(ch.consumers, tag)
		ch.mu.Unlock()
		if err == queue.ErrExclusiveUse {
			return newError(wire.AccessRefused, "queue '%s' in vhost '%s' in exclusive use", name, ch.c.vh.Name)
		}
		return err
	}
	// The queue already lists the consumer, so a client that publishes as
	// soon as it sees consume-ok finds it; it takes deliveries only from here.
	ch.mu.Lock()
	if !m.NoWait {
		ch.c.sendRaw(&wire.BasicConsumeOk{ConsumerTag: tag}, ch.id)
	}
	cs.ready = true
	ch.mu.Unlock()
	ch.emitConsumerCreated(cs, name, m.Exclusive, m.Arguments)
	q.Kick()
	return nil
}

func (ch *channel) basicCancel(m *wire.BasicCancel) error {
	ch.mu.Lock()
	cs := ch.consumers[m.ConsumerTag]
	delete(ch.consumers, m.ConsumerTag)
	if cs != nil {
		cs.gone = true
		if cs.q.Config().SingleActiveConsumer && !containsQueue(ch.cancelledSAC, cs.q) {
			ch.cancelledSAC = append(ch.cancelledSAC, cs.q)
		}
	}
	isReply := m.ConsumerTag != "" && m.ConsumerTag == ch.replyTag
	token := ch.replyToken
	if isReply {
		ch.replyTag, ch.replyToken = "", ""
	}
	ch.mu.Unlock()
	if isReply {
		ch.c.vh.UnregisterReplyTo(token)
	}
	if cs != nil {
		ch.emitConsumerDeleted(cs, ch.c.user.Name())
		ch.c.vh.ConsumerGone(cs.q, cs)
	}
	if !m.NoWait {
		ch.c.sendRaw(&wire.BasicCancelOk{ConsumerTag: m.ConsumerTag}, ch.id)
	}
	return nil
}

// cancelledByQueue runs when a consumer's queue is deleted (queue lock held):
// the client hears basic.cancel if it said it understands it.
func (ch *channel) cancelledByQueue(cs *consumer) {
	ch.mu.Lock()
	listed := ch.consumers[cs.tag] == cs
	if listed {
		delete(ch.consumers, cs.tag)
	}
	cs.gone = true
	released := ch.released
	ch.mu.Unlock()
	if listed && !released {
		// Under the queue lock, but Emit only queues the event.
		ch.emitConsumerDeleted(cs, "")
	}
	if ch.c.cancelNotify && !released {
		ch.c.sendRaw(&wire.BasicCancel{ConsumerTag: cs.tag, NoWait: true}, ch.id)
	}
}

// deliver sends d to cs if cs and its channel have room. It runs on the
// publishing goroutine with the queue's lock held.
func (ch *channel) deliver(cs *consumer, d queue.Delivery) bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.released || cs.gone || !cs.ready || !ch.flowActive {
		return false
	}
	if !cs.noAck {
		if cs.prefetch > 0 && cs.unacked >= cs.prefetch {
			return false
		}
		if ch.globalPrefetch > 0 && ch.globalUnacked >= ch.globalPrefetch {
			return false
		}
	}
	c := ch.c
	c.outMu.Lock()
	if c.outClosed {
		c.outMu.Unlock()
		return false
	}
	if len(c.out) > maxPendingOut {
		c.needKick = true
		c.outMu.Unlock()
		return false
	}
	ch.nextTag++
	tag := ch.nextTag
	m := d.Message
	c.deliver = wire.BasicDeliver{ConsumerTag: cs.tag, DeliveryTag: tag, Redelivered: d.Redelivered, Exchange: m.Exchange, RoutingKey: m.RoutingKey}
	c.appendContentLocked(&c.deliver, ch.id, deliveryProperties(cs.q, d, false), m.Body)
	if c.vh.Tracing() {
		// Traced by the writer: a trace is a publish, which must not
		// happen under this queue's lock.
		c.traces = append(c.traces, pendingTrace{channel: ch.id, queue: cs.q.Declared().Name, m: m, redelivered: d.Redelivered})
	}
	c.outMu.Unlock()
	c.signal()
	if d.Redelivered {
		ch.counts.redelivered.Add(1)
	}
	if cs.noAck {
		ch.counts.consumeAuto.Add(1)
	} else {
		ch.counts.consumeManual.Add(1)
	}
	if !cs.noAck {
		ch.trackLocked(unacked{tag: tag, q: cs.q, d: d, consumer: cs})
		cs.unacked++
		ch.globalUnacked++
	}
	return true
}

func (ch *channel) basicGet(m *wire.BasicGet) error {
	q, _, err := ch.readQueue(m.Queue)
	if err != nil {
		return err
	}
	d, remaining, ok := q.Get(m.NoAck)
	if !ok {
		ch.counts.getEmpty.Add(1)
		ch.c.sendRaw(&wire.BasicGetEmpty{}, ch.id)
		return nil
	}
	if d.Redelivered {
		ch.counts.redelivered.Add(1)
	}
	if m.NoAck {
		ch.counts.getAuto.Add(1)
	} else {
		ch.counts.getManual.Add(1)
	}
	ch.mu.Lock()
	ch.nextTag++
	tag := ch.nextTag
	if !m.NoAck {
		ch.trackLocked(unacked{tag: tag, q: q, d: d})
	}
	ch.mu.Unlock()
	msg := d.Message
	ch.c.sendContent(&wire.BasicGetOk{DeliveryTag: tag, Redelivered: d.Redelivered, Exchange: msg.Exchange, RoutingKey: msg.RoutingKey, MessageCount: uint32(remaining)}, ch.id, deliveryProperties(q, d, true), msg.Body)
	if ch.c.vh.Tracing() {
		ch.c.traceDeliver(pendingTrace{channel: ch.id, queue: q.Declared().Name, m: msg, redelivered: d.Redelivered})
	}
	return nil
}

// deliveryProperties are the properties a delivery goes out with: as
// published, plus x-delivery-count on redeliveries from a queue with a
// delivery limit, as RabbitMQ's quorum queues do.
func deliveryProperties(q queue.Interface, d queue.Delivery, get bool) []byte {
	if q.Declared().Type == queue.TypeQuorum {
		// A quorum queue counts deliveries always; basic.get shows the
		// count even on a first delivery, basic.deliver only after one.
		if d.DeliveryCount == 0 && !get {
			return d.Message.Properties
		}
		return withHeader(d.Message.Properties, "x-delivery-count", int64(d.DeliveryCount))
	}
	if d.DeliveryCount == 0 || q.Config().DeliveryLimit < 0 {
		return d.Message.Properties
	}
	return withHeader(d.Message.Properties, "x-delivery-count", int64(d.DeliveryCount))
}

// consumeReplyTo starts a direct reply-to consumer: replies published to
// amq.rabbitmq.reply-to.<token> come straight to this channel.
func (ch *channel) consumeReplyTo(m *wire.BasicConsume) error {
	if !m.NoAck {
		return newError(wire.PreconditionFailed, "reply consumer cannot acknowledge")
	}
	tag := m.ConsumerTag
	if tag == "" {
		tag = generateName("amq.ctag-")
	}
	ch.mu.Lock()
	if ch.replyToken != "" {
		ch.mu.Unlock()
		return newError(wire.PreconditionFailed, "reply consumer already set")
	}
	ch.replyTag = tag
	ch.replyToken = generateName("")
	token := ch.replyToken
	ch.mu.Unlock()
	if !m.NoWait {
		ch.c.sendRaw(&wire.BasicConsumeOk{ConsumerTag: tag}, ch.id)
	}
	ch.c.vh.RegisterReplyTo(token, ch)
	return nil
}

// DeliverReply implements vhost.ReplyTarget. A reply carries the channel's
// next delivery tag without using it up, as in RabbitMQ (rabbit_channel's
// deliver_reply): the reply consumer acknowledges nothing, so every reply
// between two deliveries has the same tag.
func (ch *channel) DeliverReply(m *queue.Message) bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.released || ch.replyTag == "" {
		return false
	}
	ch.c.sendContent(&wire.BasicDeliver{ConsumerTag: ch.replyTag, DeliveryTag: ch.nextTag + 1, Exchange: m.Exchange, RoutingKey: m.RoutingKey}, ch.id, m.Properties, m.Body)
	return true
}
