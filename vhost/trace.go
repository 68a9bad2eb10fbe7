package vhost

import (
	"github.com/warrenmq/warren/queue"
)

// TraceExchange is the firehose: with tracing on, every publish and every
// delivery in the vhost is copied to it, as rabbitmqctl trace_on does. It
// exists in every vhost (durable, internal, topic), as in RabbitMQ.
const TraceExchange = "amq.rabbitmq.trace"

// SetTracing turns the firehose on or off. As in RabbitMQ, the setting
// lasts until the broker stops.
func (v *VHost) SetTracing(on bool) { v.tracing.Store(on) }

// Tracing reports whether the firehose is on: the protocol layer checks it
// (one atomic load) on every publish and delivery.
func (v *VHost) Tracing() bool { return v.tracing.Load() }

// PublishTrace routes a trace message through TraceExchange (internal, so
// clients cannot publish there). Trace messages are transient and are not
// traced themselves. The caller holds no queue lock.
func (v *VHost) PublishTrace(routingKey string, props, body []byte) {
	v.publishInternal(&queue.Message{Exchange: TraceExchange, RoutingKey: routingKey, Properties: props, Body: body})
}

// publishInternal routes a message the broker publishes itself through
// its (internal) exchange, if that exists. The caller holds no lock.
func (v *VHost) publishInternal(m *queue.Message) {
	var s Scratch
	v.mu.RLock()
	x := v.exchanges[m.Exchange]
	if x == nil {
		v.mu.RUnlock()
		return
	}
	v.routeLocked(x, &Publishing{Exchange: m.Exchange, RoutingKey: m.RoutingKey, Message: m}, &s)
	v.mu.RUnlock()
	if len(s.queues) > 0 {
		v.enqueue(s.queues, m, nil, nil)
	}
}
