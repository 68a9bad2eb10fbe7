// Package queue holds message queues: ordering, consumers, prefetch-aware
// dispatch, acknowledgements and redelivery. It knows nothing of frames: a
// message's properties are opaque bytes here, and consumers are reached
// through the small Consumer interface that the AMQP channel implements.
package queue

// Message is one published message. It is shared, read-only, by every queue
// it was routed to, so a fan-out copies pointers, not bodies.
type Message struct {
	Exchange   string
	RoutingKey string
	// Properties is the encoded content-header property list, forwarded to
	// consumers byte for byte.
	Properties []byte
	Body       []byte
	// Persistent is delivery-mode 2.
	Persistent bool
}

// Size is the body size, which is what RabbitMQ counts for byte limits.
func (m *Message) Size() int { return len(m.Body) }

// Delivery is a message as it leaves a queue: the message plus what the
// queue knows about this copy.
type Delivery struct {
	Message     *Message
	Redelivered bool
	// seq is the message's position in its queue, kept so that a requeued
	// message goes back to where it was.
	seq uint64
}

// Consumer receives deliveries pushed by a queue. Its methods are called with
// the queue's lock held, so they must not block, do I/O or call back into the
// queue: the AMQP channel implements Deliver by appending frames to its
// connection's outbound buffer.
type Consumer interface {
	// Deliver hands d to the consumer if it has capacity (prefetch, flow,
	// buffer) and reports whether it took it.
	Deliver(q *Queue, d Delivery) bool
	// Cancel tells the consumer that the queue went away (deleted), so the
	// client can be sent basic.cancel.
	Cancel(q *Queue)
}
