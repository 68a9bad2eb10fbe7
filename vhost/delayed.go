package vhost

import (
	"bytes"
	"cmp"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
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
// exchange). A virtual host's waiting messages in memory sit in one min-heap
// ordered by due time behind one timer.
//
// On disk, each delayed exchange has entries under a storage key of its
// own, whose seq is the due time (milliseconds, shifted left 20 bits) plus
// a counter, so they are in due order. A persistent message published to a
// durable delayed exchange is always written (confirmed once on disk);
// routing it when due deletes its entry in the batch that stores it in its
// queues. Memory obeys the shared budget (storage.memory_budget): once it
// is spent, an exchange's latest messages go to disk only (transient ones
// in records that a restart drops), and an exchange whose messages in
// memory run out reads the next ones back in due order.

// maxDelay is the plugin's limit (Erlang's largest timer); a longer delay
// routes the message at once.
const maxDelay = math.MaxUint32

// dueShift leaves room in an entry's seq for the messages due in one
// millisecond.
const dueShift = 20

// Paging: an exchange keeps at least delayKeep messages in memory before
// it spills, and reads delayLoad at a time back.
const (
	delayKeep = 64
	delayLoad = 4096
)

// delayedMsg is one waiting message in memory.
type delayedMsg struct {
	seq   uint64 // due<<dueShift | counter: the order, and the stored entry's key
	delay int64  // the x-delay it came with, for the header it leaves with
	x     *delayedExchange
	m     *queue.Message
	bcc   []string
	// stored: the message and its entry are on disk; transient: written
	// only for paging, so a restart drops it.
	stored, transient bool
}

func (dm *delayedMsg) due() int64 { return int64(dm.seq >> dueShift) }

// cost is what a waiting message charges the memory budget: its bytes,
// the two structs and allocation overhead.
func (dm *delayedMsg) cost() int64 { return int64(len(dm.m.Body)+len(dm.m.Properties)) + 256 }

// delayedExchange is a delayed exchange's waiting messages; its fields
// are guarded by delays.mu.
type delayedExchange struct {
	x *exchange.Exchange
	// key names the exchange's entries in storage; "" without storage.
	key     string
	durable bool
	n       int // messages waiting, in memory and on disk
	mem     int // of which in the heap
	charged int64
	// disk counts messages only on disk; all have seq >= bound, and every
	// message of the exchange in memory has seq < bound.
	disk  int
	bound uint64
	// pending counts disk writes not yet handed to storage; lastSubmit is
	// what storage.Submitted said after the last one was. A read from disk
	// waits for both, so it cannot miss an entry.
	pending    int
	lastSubmit uint64
}

// delays is a virtual host's timer heap.
type delays struct {
	// run serializes deliverDue: a timer may fire while an earlier run
	// still routes, and messages must reach their queues in due order.
	// Taken before mu, never under it.
	run     sync.Mutex
	mu      sync.Mutex // guards everything below and every delayedExchange
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
// making it on first use; the caller holds delays.mu and v.mu.
func (v *VHost) delayedFor(x *exchange.Exchange) *delayedExchange {
	d := &v.delays
	if d.byX == nil {
		d.byX = make(map[*exchange.Exchange]*delayedExchange)
	}
	dx := d.byX[x]
	if dx == nil {
		dx = &delayedExchange{x: x, key: v.delayKeys[x.Name], durable: x.Durable}
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

// delay makes p wait at delayed exchange x; the caller holds v.mu. Writes
// (a persistent message for a durable exchange, or paging) go to *b, made
// if nil, and the exchange is added to *submit: the caller submits b, then
// calls delaysSubmitted.
func (v *VHost) delay(x *exchange.Exchange, p *Publishing, ms int64, b **storage.Batch, owner any, submit *[]*delayedExchange) {
	m := *p.Message // the copy waits; the original may also reach queues now
	m.ID = 0
	dm := &delayedMsg{delay: ms, m: &m, bcc: p.BCC}
	due := time.Now().UnixMilli() + ms
	d := &v.delays
	d.mu.Lock()
	defer d.mu.Unlock()
	dx := v.delayedFor(x)
	d.counter++
	dm.seq = uint64(due)<<dueShift | d.counter&(1<<dueShift-1)
	dm.x = dx
	dx.n++
	paged := v.store != nil && dx.key != ""
	write := func(w *delayedMsg, transient bool) {
		if *b == nil {
			*b = &storage.Batch{Owner: owner}
		}
		v.writeDelayedLocked(*b, w, transient)
		w.x.pending++
		*submit = append(*submit, w.x)
	}
	if paged && dx.disk > 0 && dm.seq >= dx.bound {
		// Behind what is on disk: it stays there too.
		write(dm, !(m.Persistent && dx.durable))
		dx.disk++
		return
	}
	if paged && m.Persistent && dx.durable {
		write(dm, false)
	}
	v.pushLocked(dm)
	if paged && v.budget.Over() && dx.mem > delayKeep {
		v.spillLocked(dx, write)
	}
	v.armLocked()
}

// writeDelayedLocked adds dm's record and entry to b.
func (v *VHost) writeDelayedLocked(b *storage.Batch, dm *delayedMsg, transient bool) {
	dm.m.ID = v.store.NextMessageID()
	b.PutMessage(dm.m.ID, queue.EncodeMessage(dm.m))
	b.PutEntry(dm.x.key, dm.seq, encodeDelayEntry(dm.m.ID, dm.delay, dm.bcc, transient))
	b.SetMessageRefs(dm.m.ID, 1)
	dm.stored, dm.transient = true, transient
}

// delaysSubmitted records that the writes delay added for these exchanges
// were handed to storage.
func (v *VHost) delaysSubmitted(dxs []*delayedExchange) {
	if len(dxs) == 0 || v.store == nil {
		return
	}
	n := v.store.Submitted()
	v.delays.mu.Lock()
	for _, dx := range dxs {
		dx.pending--
		dx.lastSubmit = n
	}
	v.delays.mu.Unlock()
}

// pushLocked puts dm in the heap and charges the budget.
func (v *VHost) pushLocked(dm *delayedMsg) {
	heap.Push(&v.delays.heap, dm)
	dm.x.mem++
	c := dm.cost()
	dm.x.charged += c
	v.budget.Charge(c)
}

// spillLocked moves the later half of dx's messages in memory to disk
// only, writing those that are not there yet through write, and lowers
// dx.bound to the first of them.
func (v *VHost) spillLocked(dx *delayedExchange, write func(dm *delayedMsg, transient bool)) {
	d := &v.delays
	var mine []*delayedMsg
	for _, dm := range d.heap {
		if dm.x == dx {
			mine = append(mine, dm)
		}
	}
	slices.SortFunc(mine, func(a, b *delayedMsg) int { return cmp.Compare(a.seq, b.seq) })
	out := mine[len(mine)/2:]
	spilled := make(map[*delayedMsg]bool, len(out))
	var freed int64
	for _, dm := range out {
		if !dm.stored {
			write(dm, true)
		}
		spilled[dm] = true
		freed += dm.cost()
	}
	kept := d.heap[:0]
	for _, dm := range d.heap {
		if !spilled[dm] {
			kept = append(kept, dm)
		}
	}
	clear(d.heap[len(kept):])
	d.heap = kept
	heap.Init(&d.heap)
	dx.mem -= len(out)
	dx.disk += len(out)
	dx.bound = out[0].seq
	dx.charged -= freed
	v.budget.Charge(-freed)
}

// armLocked points the one timer at the earliest due message.
func (v *VHost) armLocked() {
	d := &v.delays
	if len(d.heap) == 0 {
		return
	}
	due := d.heap[0].due()
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

// deliverDue routes every message whose time has come, reading more from
// disk for exchanges whose messages in memory ran out.
func (v *VHost) deliverDue() {
	const batch = 1024
	v.delays.run.Lock()
	defer v.delays.run.Unlock()
	for {
		d := &v.delays
		d.mu.Lock()
		d.timerAt = 0
		now := time.Now().UnixMilli()
		var due []*delayedMsg
		var refill []*delayedExchange
		for len(d.heap) > 0 && d.heap[0].due() <= now && len(due) < batch {
			dm := heap.Pop(&d.heap).(*delayedMsg)
			dx := dm.x
			dx.n--
			dx.mem--
			c := dm.cost()
			dx.charged -= c
			v.budget.Charge(-c)
			due = append(due, dm)
			if dx.mem == 0 && dx.disk > 0 {
				refill = append(refill, dx)
			}
		}
		more := len(d.heap) > 0 && d.heap[0].due() <= now
		if !more && len(refill) == 0 {
			v.armLocked()
		}
		d.mu.Unlock()
		for _, dm := range due {
			v.routeDelayed(dm)
		}
		for _, dx := range refill {
			v.loadDelayed(dx)
		}
		if !more && len(refill) == 0 {
			return
		}
	}
}

// loadDelayed reads dx's next messages back from disk, once every write
// for it is there.
func (v *VHost) loadDelayed(dx *delayedExchange) {
	d := &v.delays
	for {
		d.mu.Lock()
		if dx.mem > 0 || dx.disk == 0 || d.byX[dx.x] != dx {
			d.mu.Unlock()
			return
		}
		if pending := dx.pending; pending > 0 || v.store.Committed() < dx.lastSubmit {
			wait := dx.lastSubmit
			d.mu.Unlock()
			if err := v.store.WaitCommitted(wait); err != nil {
				v.log.Error("reading delayed messages failed", "vhost", v.Name, "err", err)
				return
			}
			if pending > 0 {
				time.Sleep(time.Millisecond) // a publisher is about to submit
			}
			continue
		}
		err := v.readDelayedLocked(dx, delayLoad)
		v.armLocked()
		d.mu.Unlock()
		if err != nil {
			v.log.Error("reading delayed messages failed", "vhost", v.Name, "err", err)
		}
		return
	}
}

// readDelayedLocked moves up to max of dx's messages from disk to memory,
// in due order, and moves dx.bound past them.
func (v *VHost) readDelayedLocked(dx *delayedExchange, max int) error {
	loaded := 0
	var ferr error
	reachedEnd := true
	err := v.store.Scan(dx.key, dx.bound, func(seq uint64, entry []byte, message func(uint64) []byte) bool {
		if loaded == max {
			dx.bound = seq
			reachedEnd = false
			return false
		}
		dm, err := decodeDelayed(dx, seq, entry, message)
		if err != nil {
			ferr = err
			return false
		}
		v.pushLocked(dm)
		dx.disk--
		loaded++
		return true
	})
	if err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	if reachedEnd {
		dx.disk = 0
	}
	return nil
}

func decodeDelayed(dx *delayedExchange, seq uint64, entry []byte, message func(uint64) []byte) (*delayedMsg, error) {
	id, delay, transient, bcc, err := decodeDelayEntry(entry)
	if err != nil {
		return nil, err
	}
	body := message(id)
	if body == nil {
		return nil, fmt.Errorf("%w: delayed message %d", storage.ErrNotFound, id)
	}
	m, err := queue.DecodeMessage(id, bytes.Clone(body))
	if err != nil {
		return nil, err
	}
	return &delayedMsg{seq: seq, delay: delay, x: dx, m: m, bcc: bcc, stored: true, transient: transient}, nil
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
		return
	}
	var s Scratch
	v.routeLocked(x, &p, &s)
	v.mu.RUnlock()
	// Its x-delay is negative now, so no exchange on the way delays it
	// again.
	p.readDedupKey()
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
	v.budget.Charge(-dx.charged)
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
func encodeDelayEntry(id uint64, delay int64, bcc []string, transient bool) []byte {
	b := make([]byte, 0, 19)
	b = binary.BigEndian.AppendUint64(b, id)
	b = binary.BigEndian.AppendUint64(b, uint64(delay))
	flags := byte(0)
	if transient {
		flags = 1
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint16(b, uint16(len(bcc)))
	for _, k := range bcc {
		b = binary.BigEndian.AppendUint16(b, uint16(len(k)))
		b = append(b, k...)
	}
	return b
}

var errBadDelayEntry = errors.New("vhost: bad delayed message entry")

func decodeDelayEntry(b []byte) (id uint64, delay int64, transient bool, bcc []string, err error) {
	if len(b) < 19 {
		return 0, 0, false, nil, errBadDelayEntry
	}
	id = binary.BigEndian.Uint64(b)
	delay = int64(binary.BigEndian.Uint64(b[8:]))
	transient = b[16]&1 != 0
	n := int(binary.BigEndian.Uint16(b[17:]))
	b = b[19:]
	for range n {
		if len(b) < 2 {
			return 0, 0, false, nil, errBadDelayEntry
		}
		l := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+l {
			return 0, 0, false, nil, errBadDelayEntry
		}
		bcc = append(bcc, string(b[2:2+l]))
		b = b[2+l:]
	}
	return id, delay, transient, bcc, nil
}

// recoverDelayedLocked counts a durable delayed exchange's stored
// messages and reads the first ones into memory; records written only for
// paging (transient messages) are deleted, as a restart loses them.
func (v *VHost) recoverDelayedLocked(x *exchange.Exchange, key string) (int, error) {
	d := &v.delays
	d.mu.Lock()
	defer d.mu.Unlock()
	dx := v.delayedFor(x)
	var drop storage.Batch
	var ferr error
	first := true
	err := v.store.Scan(key, 0, func(seq uint64, entry []byte, message func(uint64) []byte) bool {
		_, _, transient, _, err := decodeDelayEntry(entry)
		if err != nil {
			ferr = err
			return false
		}
		if transient {
			drop.DeleteEntry(key, seq)
			return true
		}
		if first {
			dx.bound, first = seq, false
		}
		dx.disk++
		dx.n++
		return true
	})
	if err == nil {
		err = ferr
	}
	if err != nil {
		return 0, err
	}
	if drop.Len() > 0 {
		if err := v.store.Commit(&drop); err != nil {
			return 0, err
		}
	}
	// The count walked every entry: those pages need not stay resident.
	v.store.ReleaseMapped()
	if dx.disk > 0 {
		if err := v.readDelayedLocked(dx, delayLoad); err != nil {
			return 0, err
		}
	}
	v.armLocked()
	return dx.n, nil
}
