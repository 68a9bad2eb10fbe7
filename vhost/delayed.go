package vhost

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/exchange"
	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/storage"
)

// Delayed messages, as rabbitmq-delayed-message-exchange: a publish to an
// x-delayed-message exchange whose x-delay header is a positive delay of at
// most 2^32-1 ms is not routed but waits; when it is due, its x-delay header
// becomes the negative delay and it is routed from that exchange by the
// x-delayed-type's logic (bindings, exchange-to-exchange bindings, alternate
// exchange). All of a virtual host's waiting messages sit in one min-heap
// ordered by due time behind one timer.
//
// A persistent message published to a durable delayed exchange is stored:
// its record, plus an entry under the exchange's storage key whose seq is
// the due time (milliseconds, shifted left 20 bits, plus a counter), so
// the entries of an exchange are in due order on disk. Routing it when due
// deletes that entry in the batch that stores it in its queues.

// maxDelay is the plugin's limit (Erlang's largest timer); a longer delay
// routes the message at once.
const maxDelay = math.MaxUint32

// dueShift leaves room in an entry's seq for the messages due in one
// millisecond.
const dueShift = 20

// delayedMsg is one waiting message.
type delayedMsg struct {
	due   int64  // unix milliseconds
	seq   uint64 // due<<dueShift | counter: orders equal due times, keys the stored entry
	delay int64  // the x-delay it came with, for the header it leaves with
	x     *delayedExchange
	m     *queue.Message
	bcc   []string
	// stored: the message and its entry are on disk.
	stored bool
}

// delayedExchange is a delayed exchange's waiting messages.
type delayedExchange struct {
	x *exchange.Exchange
	// key names the exchange's entries in storage; "" for a transient one.
	key string
	n   int // messages waiting; guarded by delays.mu
}

// delays is a virtual host's timer heap.
type delays struct {
	mu      sync.Mutex // guards everything below
	heap    delayHeap
	byX     map[*exchange.Exchange]*delayedExchange
	timer   *time.Timer
	timerAt int64 // when timer fires, unix ms; 0: not armed
	counter uint64
}

type delayHeap []*delayedMsg

func (h delayHeap) Len() int           { return len(h) }
func (h delayHeap) Less(i, j int) bool { return h[i].seq < h[j].seq }
func (h delayHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)        { *h = append(*h, x.(*delayedMsg)) }
func (h *delayHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return x
}

// errBadDelay is an x-delay the plugin crashes on (a string that is not an
// integer, a decimal): RabbitMQ's channel dies and the connection closes
// with 541.
var errBadDelay = errorf(InternalError, "INTERNAL_ERROR")

// delayOf reads a publish's x-delay header as the plugin's get_delay does:
// integers as they are, strings parsed as integers, floats truncated; ok is
// false when the message is to be routed at once.
func delayOf(headers map[string]any) (delay int64, ok bool, err error) {
	v, present := headers["x-delay"]
	if !present {
		return 0, false, nil
	}
	switch d := v.(type) {
	case int8, uint8, int16, uint16, int32, uint32, int64, int:
		delay, _ = queue.IntArg(d)
	case string:
		n, perr := strconv.ParseInt(d, 10, 64)
		if perr != nil {
			return 0, false, errBadDelay
		}
		delay = n
	case []byte:
		// A byte array is not one of the plugin's string types: no delay.
		return 0, false, nil
	case float32:
		delay = int64(d)
	case float64:
		if math.IsNaN(d) || math.IsInf(d, 0) {
			return 0, false, errBadDelay
		}
		delay = int64(d)
	default:
		if _, isDecimal := v.(interface{ Float() float64 }); isDecimal {
			return 0, false, errBadDelay
		}
		return 0, false, nil
	}
	return delay, delay > 0 && delay <= maxDelay, nil
}

// delayedFor returns the waiting-message state of a delayed exchange,
// making it on first use.
func (v *VHost) delayedFor(x *exchange.Exchange) *delayedExchange {
	d := &v.delays
	if d.byX == nil {
		d.byX = make(map[*exchange.Exchange]*delayedExchange)
	}
	dx := d.byX[x]
	if dx == nil {
		dx = &delayedExchange{x: x, key: v.delayKeys[x.Name]}
		d.byX[x] = dx
	}
	return dx
}

// MessagesDelayed is the number of messages an x-delayed-message exchange
// holds (the plugin's messages_delayed).
func (v *VHost) MessagesDelayed(x *exchange.Exchange) int {
	v.delays.mu.Lock()
	defer v.delays.mu.Unlock()
	if dx := v.delays.byX[x]; dx != nil {
		return dx.n
	}
	return 0
}

// delay makes p wait at delayed exchange x. A persistent message bound for
// a durable exchange adds its writes to *b (made if nil).
func (v *VHost) delay(x *exchange.Exchange, p *Publishing, ms int64, b **storage.Batch, owner any) {
	m := *p.Message // the copy waits; the original may also reach queues now
	m.ID = 0
	dm := &delayedMsg{delay: ms, m: &m, bcc: p.BCC}
	now := time.Now().UnixMilli()
	dm.due = now + ms
	d := &v.delays
	d.mu.Lock()
	dx := v.delayedFor(x)
	d.counter++
	dm.seq = uint64(dm.due)<<dueShift | d.counter&(1<<dueShift-1)
	dm.x = dx
	if m.Persistent && dx.key != "" && v.store != nil {
		if *b == nil {
			*b = &storage.Batch{Owner: owner}
		}
		m.ID = v.store.NextMessageID()
		(*b).PutMessage(m.ID, queue.EncodeMessage(&m))
		(*b).PutEntry(dx.key, dm.seq, encodeDelayEntry(m.ID, ms, p.BCC))
		(*b).SetMessageRefs(m.ID, 1)
		dm.stored = true
	}
	dx.n++
	heap.Push(&d.heap, dm)
	v.armLocked()
	d.mu.Unlock()
}

// armLocked points the one timer at the earliest due message.
func (v *VHost) armLocked() {
	d := &v.delays
	if len(d.heap) == 0 {
		return
	}
	due := d.heap[0].due
	if d.timerAt != 0 && d.timerAt <= due {
		return
	}
	wait := time.Until(time.UnixMilli(due))
	if d.timer == nil {
		d.timer = time.AfterFunc(wait, v.deliverDue)
	} else {
		d.timer.Reset(wait)
	}
	d.timerAt = due
}

// deliverDue routes every message whose time has come.
func (v *VHost) deliverDue() {
	const batch = 1024
	for {
		d := &v.delays
		d.mu.Lock()
		d.timerAt = 0
		now := time.Now().UnixMilli()
		var due []*delayedMsg
		for len(d.heap) > 0 && d.heap[0].due <= now && len(due) < batch {
			dm := heap.Pop(&d.heap).(*delayedMsg)
			dm.x.n--
			due = append(due, dm)
		}
		more := len(d.heap) > 0 && d.heap[0].due <= now
		if !more {
			v.armLocked()
		}
		d.mu.Unlock()
		for _, dm := range due {
			v.routeDelayed(dm)
		}
		if !more {
			return
		}
	}
}

// routeDelayed routes a message that is due from its exchange, unless the
// exchange was deleted meanwhile (its entries went with it).
func (v *VHost) routeDelayed(dm *delayedMsg) {
	p := undelay(dm.m, dm.delay)
	p.BCC = dm.bcc
	var b *storage.Batch
	if dm.stored {
		b = &storage.Batch{}
		b.DeleteEntry(dm.x.key, dm.seq)
	}
	v.mu.RLock()
	x := v.exchanges[dm.x.x.Name]
	if x != dm.x.x {
		v.mu.RUnlock()
		if b != nil {
			v.store.SubmitBackground(b, v.logFailure)
		}
		return
	}
	var s Scratch
	s.queues = s.queues[:0]
	v.routeLocked(x, &p, &s)
	v.mu.RUnlock()
	// Its x-delay is negative now, so no exchange on the way delays it again.
	v.enqueueBatch(s.queues, p.Message, b, nil, nil)
}

// undelay returns the publishing of a delayed message that is due: its
// x-delay header set to -delay (a signedint), as the plugin's
// swap_delay_header leaves it, and its routing keys, headers and properties
// read back from its encoding.
func undelay(m *queue.Message, delay int64) Publishing {
	var props wire.Properties
	_ = props.Decode(m.Properties) // it decoded when published
	if props.Headers == nil {
		props.Headers = wire.Table{}
	}
	props.Headers["x-delay"] = int32(-delay)
	out := *m
	out.ID = 0
	out.Persistent = props.DeliveryMode == 2
	out.Priority = props.Priority
	if !out.HasExpiration && props.Expiration != "" {
		// A recovered message: the expiration was checked when published.
		if ttl, err := strconv.ParseInt(props.Expiration, 10, 64); err == nil && ttl >= 0 {
			out.Expiration, out.HasExpiration = ttl, true
		}
	}
	out.Properties = props.Append(make([]byte, 0, len(m.Properties)+16))
	return Publishing{
		Exchange: m.Exchange, RoutingKey: m.RoutingKey, CC: RoutingKeys(props.Headers["CC"]),
		Headers: props.Headers, Props: HashProperties(&props), Message: &out,
	}
}

// HashProperties are the properties a consistent-hash exchange may hash.
func HashProperties(p *wire.Properties) exchange.MessageProperties {
	return exchange.MessageProperties{
		MessageID: p.MessageID, HasMessageID: p.Present&wire.FlagMessageID != 0,
		CorrelationID: p.CorrelationID, HasCorrelationID: p.Present&wire.FlagCorrelationID != 0,
		Timestamp: p.Timestamp, HasTimestamp: p.Present&wire.FlagTimestamp != 0,
	}
}

// forgetDelayed drops the waiting messages of a deleted delayed exchange
// from memory; its stored entries went with the deletion's batch.
func (v *VHost) forgetDelayed(x *exchange.Exchange) {
	d := &v.delays
	d.mu.Lock()
	defer d.mu.Unlock()
	dx := d.byX[x]
	if dx == nil {
		return
	}
	delete(d.byX, x)
	kept := d.heap[:0]
	for _, dm := range d.heap {
		if dm.x != dx {
			kept = append(kept, dm)
		}
	}
	clear(d.heap[len(kept):])
	d.heap = kept
	heap.Init(&d.heap)
}

// encodeDelayEntry is a stored delayed message's entry: the message id
// (storage requires it first), the delay, and the BCC keys, which the
// stored properties no longer carry.
func encodeDelayEntry(id uint64, delay int64, bcc []string) []byte {
	b := make([]byte, 0, 18)
	b = binary.BigEndian.AppendUint64(b, id)
	b = binary.BigEndian.AppendUint64(b, uint64(delay))
	b = binary.BigEndian.AppendUint16(b, uint16(len(bcc)))
	for _, k := range bcc {
		b = binary.BigEndian.AppendUint16(b, uint16(len(k)))
		b = append(b, k...)
	}
	return b
}

var errBadDelayEntry = errors.New("vhost: bad delayed message entry")

func decodeDelayEntry(b []byte) (id uint64, delay int64, bcc []string, err error) {
	if len(b) < 18 {
		return 0, 0, nil, errBadDelayEntry
	}
	id = binary.BigEndian.Uint64(b)
	delay = int64(binary.BigEndian.Uint64(b[8:]))
	n := int(binary.BigEndian.Uint16(b[16:]))
	b = b[18:]
	for range n {
		if len(b) < 2 {
			return 0, 0, nil, errBadDelayEntry
		}
		l := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+l {
			return 0, 0, nil, errBadDelayEntry
		}
		bcc = append(bcc, string(b[2:2+l]))
		b = b[2+l:]
	}
	return id, delay, bcc, nil
}

// recoverDelayedLocked loads a durable delayed exchange's stored messages.
func (v *VHost) recoverDelayedLocked(x *exchange.Exchange, key string) (int, error) {
	type rec struct {
		seq   uint64
		value []byte
	}
	var recs []rec
	err := v.store.Entries(key, func(seq uint64, value []byte) error {
		recs = append(recs, rec{seq, value})
		return nil
	})
	if err != nil {
		return 0, err
	}
	d := &v.delays
	d.mu.Lock()
	defer d.mu.Unlock()
	dx := v.delayedFor(x)
	for _, r := range recs {
		id, delay, bcc, err := decodeDelayEntry(r.value)
		if err != nil {
			return 0, err
		}
		body, err := v.store.Message(id)
		if err != nil {
			return 0, err
		}
		m, err := queue.DecodeMessage(id, body)
		if err != nil {
			return 0, err
		}
		heap.Push(&d.heap, &delayedMsg{
			due: int64(r.seq >> dueShift), seq: r.seq, delay: delay, x: dx, m: m, bcc: bcc, stored: true,
		})
		dx.n++
	}
	v.armLocked()
	return len(recs), nil
}
