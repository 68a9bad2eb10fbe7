package amqp

import (
	"crypto/tls"
	"net"
	"strconv"

	"github.com/warrenmq/warren/event"
)

// The protocol's part of the event exchange (rabbitmq_event_exchange):
// logins, connections, channels and consumers. Each emit checks
// event.Emitter.Enabled first, so nothing is built while nobody is bound
// to amq.rabbitmq.event. Definition events (queues, exchanges, bindings)
// come from the vhost, and user, vhost and permission events from the
// broker, where those change.

func (c *conn) events() event.Emitter { return c.srv.broker.Events() }

// connName is the connection's name as RabbitMQ gives it:
// "client:port -> server:port".
func (c *conn) connName() string {
	ph, pp := splitAddr(c.nc.RemoteAddr())
	h, p := splitAddr(c.nc.LocalAddr())
	return net.JoinHostPort(ph, strconv.Itoa(pp)) + " -> " + net.JoinHostPort(h, strconv.Itoa(p))
}

// eventPeer is what connection and login events say about the socket.
func (c *conn) eventPeer() event.Peer {
	ph, pp := splitAddr(c.nc.RemoteAddr())
	h, p := splitAddr(c.nc.LocalAddr())
	_, tlsConn := c.nc.(*tls.Conn)
	return event.Peer{
		Name: c.connName(), Pid: event.Pid(c.id),
		Host: event.IPTerm(net.ParseIP(h)), Port: p,
		PeerHost: event.IPTerm(net.ParseIP(ph)), PeerPort: pp, TLS: tlsConn,
	}
}

// userProvidedName is the client's connection_name property, or "".
func (c *conn) userProvidedName() string {
	s, _ := c.clientProps["connection_name"].(string)
	return s
}

func (c *conn) emitLogin(user, mechanism string, ok bool) {
	em := c.events()
	if !em.Enabled() {
		return
	}
	if ok {
		em.Emit("user.authentication.success", event.AuthenticationSuccess(c.eventPeer(), user, mechanism))
		return
	}
	em.Emit("user.authentication.failure", event.AuthenticationFailure(c.eventPeer(), user, mechanism,
		"user '"+user+"' - invalid credentials"))
}

func (c *conn) emitConnectionCreated() {
	em := c.events()
	if !em.Enabled() {
		return
	}
	em.Emit("connection.created", event.ConnectionCreated(c.eventPeer(), event.Node(), c.vh.Name, c.user.Name(),
		c.mechanism, c.channelMax, c.frameMax, int(c.heartbeat.Seconds()), c.connectedAt.UnixMilli(),
		c.clientProps, c.userProvidedName()))
}

// emitConnectionClosed runs when a connection that got as far as its
// start-ok ends, as RabbitMQ reports even those refused at login.
func (c *conn) emitConnectionClosed() {
	em := c.events()
	if !em.Enabled() {
		return
	}
	em.Emit("connection.closed", event.ConnectionClosed(c.connName(), event.Pid(c.id), event.Node(),
		c.clientProps, c.userProvidedName()))
}

func (ch *channel) emitCreated() {
	c := ch.c
	if em := c.events(); em.Enabled() {
		em.Emit("channel.created", event.ChannelCreated(c.vh.Name, c.user.Name(),
			c.connName()+" ("+strconv.Itoa(int(ch.id))+")", event.Pid(ch.pid), event.Pid(c.id), ch.id))
	}
}

func (ch *channel) emitClosed() {
	if em := ch.c.events(); em.Enabled() {
		em.Emit("channel.closed", event.ChannelClosed(event.Pid(ch.pid), ch.c.user.Name()))
	}
}

func (ch *channel) emitConsumerCreated(cs *consumer, queueName string, exclusive bool, args map[string]any) {
	if em := ch.c.events(); em.Enabled() {
		em.Emit("consumer.created", event.ConsumerCreated(ch.c.vh.Name, queueName, cs.tag, event.Pid(ch.pid),
			exclusive, !cs.noAck, cs.prefetch, args, ch.c.user.Name()))
	}
}

// emitConsumerDeleted reports a consumer gone: cancelled by its client
// (actor is the user), with its channel (event.Internal), or with its
// queue (actor "", as RabbitMQ then names nobody).
func (ch *channel) emitConsumerDeleted(cs *consumer, actor string) {
	em := ch.c.events()
	if !em.Enabled() {
		return
	}
	h := event.ConsumerDeleted(ch.c.vh.Name, cs.q.Declared().Name, cs.tag, event.Pid(ch.pid), actor)
	if actor == "" {
		delete(h, "user_who_performed_action")
	}
	em.Emit("consumer.deleted", h)
}
