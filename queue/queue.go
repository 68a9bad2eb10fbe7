package queue

import (
	"errors"
	"sync"
)

// Errors returned by queue operations; the AMQP layer maps them to reply codes.
var (
	// ErrExclusiveUse means an exclusive consumer holds the queue, or an
	// exclusive consumer was asked for while others exist.
	ErrExclusiveUse = errors.New("queue in exclusive use")
	// ErrDeleted means the queue was deleted while the caller held it.
	ErrDeleted = errors.New("queue deleted")
)

// Queue is one message queue. All methods are safe for concurrent use.
type Queue struct {
	// Name and the declare-time properties never change after New.
	Name       string
	Durable    bool
	Exclusive  bool
	AutoDelete bool
	Args       map[string]any
	// Owner is the connection that owns an exclusive queue, 0 otherwise.
	Owner uint64

	mu sync.Mutex // guards everything below
	// ready holds deliveries never handed out; requeued holds those that came
	// back, which go first and in their original order.
	ready     ring
	requeued  seqHeap
	nextSeq   uint64
	consumers []consumerEntry
	next      int // round-robin cursor into consumers
	// exclusive is set while an exclusive consumer holds the queue.
	exclusive bool
	unacked   int
	deleted   bool
	// hadConsumer records that a consumer ever attached: auto-delete only
	// applies once the last of them has gone, as in RabbitMQ.
	hadConsumer bool
}

type consumerEntry struct {
	c Consumer
	// noAck deliveries are settled when handed out.
	noAck bool
}

// New makes an empty queue.
func New(name string, durable, exclusive, autoDelete bool, args map[string]any, owner uint64) *Queue {
	return &Queue{Name: name, Durable: durable, Exclusive: exclusive, AutoDelete: autoDelete, Args: args, Owner: owner}
}

// Push enqueues m and hands it to a consumer if one can take it. It reports
// false if the queue has been deleted.
func (q *Queue) Push(m *Message) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.deleted {
		return false
	}
	q.nextSeq++
	q.ready.push(Delivery{Message: m, seq: q.nextSeq})
	q.dispatchLocked()
	return true
}

// Get takes the next message for basic.get and returns it with the number of
// messages left. With noAck the message is settled at once; otherwise it
// counts as unacked until Ack or Requeue.
func (q *Queue) Get(noAck bool) (d Delivery, remaining int, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.deleted || q.readyLocked() == 0 {
		return Delivery{}, 0, false
	}
	d = q.popLocked()
	if !noAck {
		q.unacked++
	}
	return d, q.readyLocked(), true
}

// AddConsumer attaches c. It does not dispatch: the caller kicks the queue
// once the client has been told about the consumer, so that no delivery
// overtakes the consume-ok.
func (q *Queue) AddConsumer(c Consumer, exclusive, noAck bool) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.deleted {
		return ErrDeleted
	}
	if q.exclusive || (exclusive && len(q.consumers) > 0) {
		return ErrExclusiveUse
	}
	q.consumers = append(q.consumers, consumerEntry{c: c, noAck: noAck})
	q.exclusive = exclusive
	q.hadConsumer = true
	return nil
}

// RemoveConsumer detaches c. It reports whether the queue is now an
// auto-delete queue that lost its last consumer and should be deleted.
func (q *Queue) RemoveConsumer(c Consumer) (autoDelete bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := range q.consumers {
		if q.consumers[i].c == c {
			q.consumers = append(q.consumers[:i], q.consumers[i+1:]...)
			q.exclusive = false
			if q.next > i {
				q.next--
			}
			break
		}
	}
	return q.AutoDelete && q.hadConsumer && len(q.consumers) == 0 && !q.deleted
}

// Kick retries dispatch, for when a consumer regained capacity (an ack, a
// drained socket buffer, channel.flow back on).
func (q *Queue) Kick() {
	q.mu.Lock()
	q.dispatchLocked()
	q.mu.Unlock()
}

// Ack settles deliveries that consumers acknowledged.
func (q *Queue) Ack(ds []Delivery) {
	q.mu.Lock()
	if !q.deleted {
		q.unacked -= len(ds)
	}
	q.mu.Unlock()
}

// Requeue puts unacknowledged deliveries back at their original positions,
// marked redelivered, and dispatches them again.
func (q *Queue) Requeue(ds []Delivery) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.deleted {
		return
	}
	q.unacked -= len(ds)
	for _, d := range ds {
		d.Redelivered = true
		q.requeued.push(d)
	}
	q.dispatchLocked()
}

// Purge drops every ready message and returns how many there were. Unacked
// messages are not touched, as in RabbitMQ.
func (q *Queue) Purge() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.readyLocked()
	q.ready = ring{}
	q.requeued = nil
	return n
}

// Delete marks the queue deleted, tells its consumers and returns the number
// of ready messages it held. Later calls return 0.
func (q *Queue) Delete() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.deleted {
		return 0
	}
	q.deleted = true
	n := q.readyLocked()
	q.ready, q.requeued = ring{}, nil
	for _, ce := range q.consumers {
		ce.c.Cancel(q)
	}
	q.consumers = nil
	return n
}

// Stats is a snapshot of a queue's counters.
type Stats struct {
	Ready     int
	Unacked   int
	Consumers int
}

// Stats returns the queue's counters.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return Stats{Ready: q.readyLocked(), Unacked: q.unacked, Consumers: len(q.consumers)}
}

// InUse reports whether the queue has consumers, for delete if-unused.
func (q *Queue) InUse() bool { return q.Stats().Consumers > 0 }

func (q *Queue) readyLocked() int { return q.ready.len() + len(q.requeued) }

func (q *Queue) peekLocked() *Delivery {
	if len(q.requeued) > 0 {
		return &q.requeued[0]
	}
	return q.ready.peek()
}

func (q *Queue) popLocked() Delivery {
	if len(q.requeued) > 0 {
		return q.requeued.pop()
	}
	return q.ready.pop()
}

// dispatchLocked hands ready messages to consumers round-robin, skipping the
// ones that are full, until the queue is empty or nobody can take more.
func (q *Queue) dispatchLocked() {
	for q.readyLocked() > 0 && len(q.consumers) > 0 {
		d := q.peekLocked()
		n := len(q.consumers)
		taken := false
		for i := 0; i < n; i++ {
			idx := (q.next + i) % n
			ce := &q.consumers[idx]
			if ce.c.Deliver(q, *d) {
				q.popLocked()
				if !ce.noAck {
					q.unacked++
				}
				q.next = (idx + 1) % n
				taken = true
				break
			}
		}
		if !taken {
			return
		}
	}
}
