package vhost

import (
	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/event"
	"github.com/warrenmq/warren/exchange"
	"github.com/warrenmq/warren/queue"
)

// Definition events (rabbitmq_event_exchange): every op reports what it
// created and deleted, after its commit and without v.mu, to the emitter
// the broker gave the vhost. While nobody is bound to the event exchange,
// an op pays one Enabled check per change and builds nothing.

// emit reports an event once t's commit succeeded; build runs then, and
// only if somebody listens.
func (v *VHost) emit(t *txn, key string, build func() wire.Table) {
	if v.events.Enabled() {
		t.onSuccess(func(*Result) { v.events.Emit(key, build()) })
	}
}

func (v *VHost) emitBinding(t *txn, key string, bd exchange.Binding, actor string) {
	v.emit(t, key, func() wire.Table {
		return event.Binding(v.Name, bd.Source, bd.Destination.Name, bd.Destination.Exchange, bd.Key, bd.Args, actor)
	})
}

func (v *VHost) emitExchangeCreated(t *txn, e *exchange.Exchange, actor string) {
	v.emit(t, "exchange.created", func() wire.Table {
		return event.ExchangeCreated(v.Name, e.Name, e.Kind.String(), e.Durable, e.AutoDelete, e.Internal, e.Args,
			v.PolicyFor(e.Name, false), actor)
	})
}

// AnnounceCreated reports the predeclared exchanges of a vhost just
// created by actor, as RabbitMQ does when it declares them.
func (v *VHost) AnnounceCreated(actor string) {
	if !v.events.Enabled() {
		return
	}
	for _, p := range predeclared {
		v.mu.RLock()
		e := v.exchanges[p.name]
		v.mu.RUnlock()
		if e != nil {
			v.events.Emit("exchange.created", event.ExchangeCreated(v.Name, e.Name, e.Kind.String(), e.Durable,
				e.AutoDelete, e.Internal, e.Args, "", actor))
		}
	}
}

// PublishEvent routes an event through event.Exchange. Events are
// persistent, as RabbitMQ's are. The caller holds no lock.
func (v *VHost) PublishEvent(routingKey string, props []byte) {
	v.publishInternal(&queue.Message{Exchange: event.Exchange, RoutingKey: routingKey, Properties: props, Persistent: true})
}
