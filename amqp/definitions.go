package amqp

import (
	"crypto/rand"
	"encoding/base64"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/exchange"
	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/vhost"
)

// checkAccess enforces the user's permission patterns, with RabbitMQ's text.
func (ch *channel) checkAccess(what broker.Access, kind, name string) error {
	c := ch.c
	if c.user.Allowed(c.vh.Name, what, name) {
		return nil
	}
	return newError(wire.AccessRefused, "access to %s '%s' in vhost '%s' refused for user '%s'", kind, name, c.vh.Name, c.user.Name())
}

// checkTopic enforces the user's topic permission on exchange x, if x is a
// topic exchange: write for a publish's routing key, read for a binding's
// key, with RabbitMQ's text. A missing exchange is left to the operation,
// which refuses it with 404.
func (ch *channel) checkTopic(what broker.Access, x, key string) error {
	c := ch.c
	if !c.user.HasTopicPermissions(c.vh.Name) {
		return nil
	}
	e, err := c.vh.Exchange(x)
	if err != nil || e.Kind != exchange.Topic || c.user.TopicAllowed(c.vh.Name, x, what, key) {
		return nil
	}
	return newError(wire.AccessRefused, "access to topic '%s' in exchange '%s' in vhost '%s' refused for user '%s'", key, x, c.vh.Name, c.user.Name())
}

// applyOp runs a definition op on the connection's vhost, through the
// broker's one entry point for state changes.
func (ch *channel) applyOp(op vhost.Op) (vhost.Result, error) {
	return ch.c.srv.broker.ApplyAs(broker.VhostOp{Vhost: ch.c.vh.Name, Op: op}, ch.c.user.Name())
}

// apply runs a definition op and sends its reply unless nowait.
func (ch *channel) apply(op vhost.Op, nowait bool, reply wire.Method) (vhost.Result, error) {
	res, err := ch.applyOp(op)
	if err != nil {
		return res, err
	}
	if !nowait && reply != nil {
		ch.c.sendRaw(reply, ch.id)
	}
	return res, nil
}

func (ch *channel) exchangeDeclare(m *wire.ExchangeDeclare) error {
	if m.Exchange == "" {
		// Refused even passively, as RabbitMQ does.
		return newError(wire.AccessRefused, "operation not permitted on the default exchange")
	}
	if m.Passive {
		if _, err := ch.c.vh.Exchange(m.Exchange); err != nil {
			return err
		}
		if !m.NoWait {
			ch.c.sendRaw(&wire.ExchangeDeclareOk{}, ch.id)
		}
		return nil
	}
	if _, err := ch.c.vh.Exchange(m.Exchange); err != nil && vhost.Reserved(m.Exchange) {
		// Like RabbitMQ, only creating an amq.* exchange is refused;
		// redeclaring an existing one is checked for equivalence.
		return newError(wire.AccessRefused, "exchange name '%s' contains reserved prefix 'amq.*'", m.Exchange)
	}
	if err := ch.checkAccess(broker.Configure, "exchange", m.Exchange); err != nil {
		return err
	}
	_, err := ch.apply(vhost.DeclareExchange{
		Name: m.Exchange, Kind: m.Type, Durable: m.Durable, AutoDelete: m.AutoDelete,
		Internal: m.Internal, Args: m.Arguments,
	}, m.NoWait, &wire.ExchangeDeclareOk{})
	return err
}

func (ch *channel) exchangeDelete(m *wire.ExchangeDelete) error {
	if m.Exchange == "" {
		return newError(wire.AccessRefused, "operation not permitted on the default exchange")
	}
	if vhost.Reserved(m.Exchange) {
		return newError(wire.AccessRefused, "deletion of system exchange '%s' in vhost '%s' not allowed", m.Exchange, ch.c.vh.Name)
	}
	if err := ch.checkAccess(broker.Configure, "exchange", m.Exchange); err != nil {
		return err
	}
	_, err := ch.apply(vhost.DeleteExchange{Name: m.Exchange, IfUnused: m.IfUnused}, m.NoWait, &wire.ExchangeDeleteOk{})
	return err
}

func (ch *channel) exchangeBind(dest, src, key string, args wire.Table, unbind, nowait bool, reply wire.Method) error {
	if err := ch.checkAccess(broker.Write, "exchange", dest); err != nil {
		return err
	}
	if err := ch.checkAccess(broker.Read, "exchange", src); err != nil {
		return err
	}
	if err := ch.checkTopic(broker.Read, src, key); err != nil {
		return err
	}
	op := vhost.Bind{Source: src, Destination: dest, ToExchange: true, Key: key, Args: args, Owner: ch.c.id}
	if unbind {
		_, err := ch.apply(vhost.Unbind(op), nowait, reply)
		return err
	}
	_, err := ch.apply(op, nowait, reply)
	return err
}

func (ch *channel) queueDeclare(m *wire.QueueDeclare) error {
	c := ch.c
	name := m.Queue
	if m.Passive {
		if name == "" {
			name = ch.lastQueue
		}
		if name == replyToQueue {
			ch.c.sendRaw(&wire.QueueDeclareOk{Queue: name}, ch.id)
			return nil
		}
		q, err := c.vh.Queue(name, c.id)
		if err != nil {
			return err
		}
		q.Touch() // a passive declare counts as use for x-expires, as in RabbitMQ
		ch.lastQueue = name
		if !m.NoWait {
			st := q.Stats()
			c.sendRaw(&wire.QueueDeclareOk{Queue: name, MessageCount: uint32(st.Ready), ConsumerCount: uint32(st.Consumers)}, ch.id)
		}
		return nil
	}
	if name == "" && m.Arguments["x-queue-type"] == "quorum" {
		return newError(wire.PreconditionFailed, "Cannot declare a server-named queue for type rabbit_quorum_queue")
	}
	if name == "" {
		name = generateName("amq.gen-")
	} else if _, err := c.vh.Queue(name, c.id); err != nil && vhost.Reserved(name) {
		return newError(wire.AccessRefused, "queue name '%s' contains reserved prefix 'amq.*'", name)
	}
	if err := ch.checkAccess(broker.Configure, "queue", name); err != nil {
		return err
	}
	_, existed := c.vh.Queue(name, c.id)
	_, err := ch.applyOp(vhost.DeclareQueue{
		Name: name, Durable: m.Durable, Exclusive: m.Exclusive, AutoDelete: m.AutoDelete,
		Args: m.Arguments, Owner: c.id,
	})
	if err != nil {
		return err
	}
	ch.c.srv.totals.queuesDeclared.Add(1)
	if existed != nil {
		ch.c.srv.totals.queuesCreated.Add(1)
	}
	ch.lastQueue = name
	if !m.NoWait {
		q, err := c.vh.Queue(name, c.id)
		if err != nil {
			return err
		}
		st := q.Stats()
		c.sendRaw(&wire.QueueDeclareOk{Queue: name, MessageCount: uint32(st.Ready), ConsumerCount: uint32(st.Consumers)}, ch.id)
	}
	return nil
}

// queueName resolves an empty queue name to the channel's last declared
// queue, as AMQP's "current queue" rule says.
func (ch *channel) queueName(name string) (string, error) {
	if name != "" {
		return name, nil
	}
	if ch.lastQueue == "" {
		return "", newError(wire.NotFound, "no previously declared queue")
	}
	return ch.lastQueue, nil
}

// readQueue finds a queue to read from (consume, get, purge): the name
// resolved, read permission checked, exclusive ownership respected.
func (ch *channel) readQueue(queueName string) (queue.Interface, string, error) {
	name, err := ch.queueName(queueName)
	if err != nil {
		return nil, "", err
	}
	if err := ch.checkAccess(broker.Read, "queue", name); err != nil {
		return nil, "", err
	}
	q, err := ch.c.vh.Queue(name, ch.c.id)
	return q, name, err
}

func (ch *channel) queueBind(queueName, exchangeName, key string, args wire.Table, unbind, nowait bool) error {
	name, err := ch.queueName(queueName)
	if err != nil {
		return err
	}
	if queueName == "" && key == "" {
		key = name
	}
	if err := ch.checkAccess(broker.Write, "queue", name); err != nil {
		return err
	}
	if err := ch.checkAccess(broker.Read, "exchange", exchangeName); err != nil {
		return err
	}
	if err := ch.checkTopic(broker.Read, exchangeName, key); err != nil {
		return err
	}
	op := vhost.Bind{Source: exchangeName, Destination: name, Key: key, Args: args, Owner: ch.c.id}
	if unbind {
		_, err = ch.apply(vhost.Unbind(op), false, &wire.QueueUnbindOk{})
		return err
	}
	_, err = ch.apply(op, nowait, &wire.QueueBindOk{})
	return err
}

func (ch *channel) queuePurge(m *wire.QueuePurge) error {
	q, _, err := ch.readQueue(m.Queue)
	if err != nil {
		return err
	}
	n := q.Purge()
	if !m.NoWait {
		ch.c.sendRaw(&wire.QueuePurgeOk{MessageCount: uint32(n)}, ch.id)
	}
	return nil
}

func (ch *channel) queueDelete(m *wire.QueueDelete) error {
	name, err := ch.queueName(m.Queue)
	if err != nil {
		return err
	}
	if err := ch.checkAccess(broker.Configure, "queue", name); err != nil {
		return err
	}
	_, missing := ch.c.vh.Queue(name, ch.c.id)
	res, err := ch.applyOp(vhost.DeleteQueue{Name: name, IfUnused: m.IfUnused, IfEmpty: m.IfEmpty, Owner: ch.c.id})
	if err != nil {
		return err
	}
	if missing == nil {
		ch.c.srv.totals.queuesDeleted.Add(1)
	}
	if !m.NoWait {
		ch.c.sendRaw(&wire.QueueDeleteOk{MessageCount: uint32(res.Messages)}, ch.id)
	}
	return nil
}

// generateName makes a server-generated name the way RabbitMQ shapes them:
// a prefix and 22 characters of URL-safe base64.
func generateName(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}
