package conformance

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// eventWatch is a queue bound to amq.rabbitmq.event with "#": every event
// of the node, which keep passes through a filter (other tests and other
// clients of a shared RabbitMQ emit events too).
type eventWatch struct {
	t  *testing.T
	ds <-chan amqp091.Delivery
}

func watchEvents(t *testing.T, url string) *eventWatch {
	t.Helper()
	conn, err := amqp091.Dial(url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	require.NoError(t, err)
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind(q.Name, "#", "amq.rabbitmq.event", false, nil))
	ds, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	require.NoError(t, err)
	return &eventWatch{t: t, ds: ds}
}

// collect reads events until it has one for each of want's routing keys
// (in any order, each as often as listed) among those keep accepts.
func (w *eventWatch) collect(keep func(amqp091.Delivery) bool, want ...string) map[string][]amqp091.Delivery {
	w.t.Helper()
	missing := slices.Clone(want)
	got := map[string][]amqp091.Delivery{}
	deadline := time.After(10 * time.Second)
	for len(missing) > 0 {
		select {
		case d := <-w.ds:
			if !keep(d) {
				continue
			}
			if i := slices.Index(missing, d.RoutingKey); i >= 0 {
				missing = slices.Delete(missing, i, i+1)
			}
			got[d.RoutingKey] = append(got[d.RoutingKey], d)
		case <-deadline:
			w.t.Fatalf("events missing: %v (got %v)", missing, keys(got))
		}
	}
	return got
}

func keys(m map[string][]amqp091.Delivery) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// requireEvent checks an event's message and its exact set of headers;
// want holds the values to compare, and the type of each other header.
func requireEvent(t *testing.T, d amqp091.Delivery, want amqp091.Table, headers ...string) {
	t.Helper()
	require.Equal(t, "amq.rabbitmq.event", d.Exchange)
	require.Equal(t, uint8(2), d.DeliveryMode, d.RoutingKey)
	require.Empty(t, d.Body)
	ms, ok := d.Headers["timestamp_in_ms"].(int64)
	require.True(t, ok, "%s: timestamp_in_ms is %T", d.RoutingKey, d.Headers["timestamp_in_ms"])
	require.Equal(t, ms/1000, d.Timestamp.Unix(), "%s: the timestamp property is in seconds", d.RoutingKey)
	require.WithinDuration(t, time.Now(), time.UnixMilli(ms), time.Minute)
	names := append([]string{"timestamp_in_ms"}, headers...)
	for k := range want {
		names = append(names, k)
	}
	slices.Sort(names)
	var got []string
	for k := range d.Headers {
		got = append(got, k)
	}
	slices.Sort(got)
	require.Equal(t, names, got, "%s: header names", d.RoutingKey)
	for k, v := range want {
		require.Equal(t, v, d.Headers[k], "%s: header %s", d.RoutingKey, k)
	}
}

// TestEventExchange: amq.rabbitmq.event (rabbitmq_event_exchange) in the
// default vhost gets the queue, exchange, binding, connection, channel,
// consumer and authentication events of AMQP clients, with RabbitMQ
// 3.10.8's routing keys and headers (the same test passes against it).
func TestEventExchange(t *testing.T) {
	b := startBroker(t)
	conn0, ch0 := b.channel(t)
	_ = conn0
	// The exchange is RabbitMQ's: topic, durable, internal.
	require.NoError(t, ch0.ExchangeDeclarePassive("amq.rabbitmq.event", "topic", true, false, true, false, nil))
	w := watchEvents(t, b.URL)

	id := fmt.Sprintf("%x", rand.Uint64())
	xname, qname, cname := "ev-x-"+id, "ev-q-"+id, "ev-conn-"+id
	b.cleanupQueue(t, qname)
	b.cleanupExchange(t, xname)
	conn, err := amqp091.DialConfig(b.URL, amqp091.Config{Properties: amqp091.Table{"connection_name": cname}})
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	require.NoError(t, ch.ExchangeDeclare(xname, "topic", true, false, false, false, amqp091.Table{"x-int": int32(5)}))
	_, err = ch.QueueDeclare(qname, true, false, false, false, amqp091.Table{"x-max-length": int32(10)})
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind(qname, "rk.#", xname, false, amqp091.Table{"x-b": "v"}))
	require.NoError(t, ch.ExchangeBind("amq.direct", "k-"+id, xname, false, nil))
	_, err = ch.Consume(qname, "ctag1-"+id, false, false, false, false, amqp091.Table{"x-priority": int32(3)})
	require.NoError(t, err)
	require.NoError(t, ch.Qos(7, 0, false))
	_, err = ch.Consume(qname, "ctag2-"+id, true, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.Cancel("ctag1-"+id, false))
	require.NoError(t, ch.QueueUnbind(qname, "rk.#", xname, amqp091.Table{"x-b": "v"}))
	require.NoError(t, ch.ExchangeUnbind("amq.direct", "k-"+id, xname, false, nil))
	require.NoError(t, ch.Cancel("ctag2-"+id, false))
	_, err = ch.QueueDelete(qname, false, false, false)
	require.NoError(t, err)
	require.NoError(t, ch.ExchangeDelete(xname, false, false))
	require.NoError(t, ch.Close())
	require.NoError(t, conn.Close())

	ours := func(d amqp091.Delivery) bool {
		for _, k := range []string{"name", "queue", "source_name", "user_provided_name"} {
			if s, _ := d.Headers[k].(string); strings.Contains(s, id) {
				return true
			}
		}
		return strings.HasPrefix(d.RoutingKey, "channel.")
	}
	ev := w.collect(ours, "connection.created", "channel.created", "exchange.created", "queue.created",
		"binding.created", "binding.created", "consumer.created", "consumer.created", "consumer.deleted",
		"binding.deleted", "binding.deleted", "consumer.deleted", "queue.deleted", "exchange.deleted",
		"channel.closed", "connection.closed")

	cc := ev["connection.created"][0]
	pid, _ := cc.Headers["pid"].(string)
	require.True(t, strings.HasPrefix(pid, "<") && strings.HasSuffix(pid, ">"), "pid %q", pid)
	connName, _ := cc.Headers["name"].(string)
	require.Contains(t, connName, " -> ")
	requireEvent(t, cc, amqp091.Table{
		"vhost": "/", "user": "guest", "user_who_performed_action": "guest", "user_provided_name": cname,
		"auth_mechanism": "PLAIN", "type": "network", "protocol": "{0,9,1}", "ssl": false,
		"ssl_cipher": "", "ssl_hash": "", "ssl_key_exchange": "", "ssl_protocol": "",
		"peer_cert_issuer": "", "peer_cert_subject": "", "peer_cert_validity": "",
	}, "name", "pid", "node", "host", "port", "peer_host", "peer_port", "channel_max", "frame_max",
		"timeout", "connected_at", "client_properties")
	for _, k := range []string{"port", "peer_port", "channel_max", "frame_max", "timeout", "connected_at"} {
		require.IsType(t, int64(0), cc.Headers[k], k)
	}
	require.Contains(t, cc.Headers["client_properties"], `{<<"connection_name">>,longstr,<<"`+cname+`">>}`)
	require.True(t, strings.HasPrefix(cc.Headers["host"].(string), "{"), "host %v", cc.Headers["host"])

	// Channels: ours are those of our connection, and closes of their pids.
	var chanPid string
	for _, d := range ev["channel.created"] {
		if d.Headers["connection"] == pid {
			chanPid, _ = d.Headers["pid"].(string)
			requireEvent(t, d, amqp091.Table{
				"vhost": "/", "user": "guest", "user_who_performed_action": "guest", "number": int64(1),
				"connection": pid, "name": connName + " (1)",
			}, "pid")
		}
	}
	require.NotEmpty(t, chanPid, "no channel.created for our connection")
	closed := false
	for _, d := range ev["channel.closed"] {
		if d.Headers["pid"] == chanPid {
			closed = true
			requireEvent(t, d, amqp091.Table{"pid": chanPid, "user_who_performed_action": "guest"})
		}
	}
	if !closed {
		more := w.collect(func(d amqp091.Delivery) bool { return d.Headers["pid"] == chanPid }, "channel.closed")
		requireEvent(t, more["channel.closed"][0], amqp091.Table{"pid": chanPid, "user_who_performed_action": "guest"})
	}

	requireEvent(t, ev["exchange.created"][0], amqp091.Table{
		"vhost": "/", "name": xname, "type": "topic", "durable": true, "auto_delete": false, "internal": false,
		"arguments": []any{`{<<"x-int">>,signedint,5}`}, "policy": "", "user_who_performed_action": "guest",
	})
	requireEvent(t, ev["queue.created"][0], amqp091.Table{
		"vhost": "/", "name": qname, "durable": true, "auto_delete": false, "exclusive": false, "owner_pid": "",
		"arguments": []any{`{<<"x-max-length">>,signedint,10}`}, "user_who_performed_action": "guest",
	})
	bindings := map[string]amqp091.Table{
		qname: {"vhost": "/", "source_name": xname, "source_kind": "exchange", "destination_name": qname,
			"destination_kind": "queue", "routing_key": "rk.#", "arguments": []any{`{<<"x-b">>,longstr,<<"v">>}`},
			"user_who_performed_action": "guest"},
		"amq.direct": {"vhost": "/", "source_name": xname, "source_kind": "exchange", "destination_name": "amq.direct",
			"destination_kind": "exchange", "routing_key": "k-" + id, "arguments": []any(nil),
			"user_who_performed_action": "guest"},
	}
	for _, key := range []string{"binding.created", "binding.deleted"} {
		for _, d := range ev[key] {
			requireEvent(t, d, bindings[d.Headers["destination_name"].(string)])
		}
	}
	consumers := map[string]amqp091.Table{
		"ctag1-" + id: {"vhost": "/", "queue": qname, "consumer_tag": "ctag1-" + id, "channel": chanPid,
			"exclusive": false, "ack_required": true, "prefetch_count": int64(0),
			"arguments": []any{`{<<"x-priority">>,signedint,3}`}, "user_who_performed_action": "guest"},
		"ctag2-" + id: {"vhost": "/", "queue": qname, "consumer_tag": "ctag2-" + id, "channel": chanPid,
			"exclusive": false, "ack_required": false, "prefetch_count": int64(7),
			"arguments": []any(nil), "user_who_performed_action": "guest"},
	}
	for _, d := range ev["consumer.created"] {
		requireEvent(t, d, consumers[d.Headers["consumer_tag"].(string)])
	}
	for _, d := range ev["consumer.deleted"] {
		tag := d.Headers["consumer_tag"].(string)
		requireEvent(t, d, amqp091.Table{"vhost": "/", "queue": qname, "consumer_tag": tag, "channel": chanPid,
			"user_who_performed_action": "guest"})
	}
	requireEvent(t, ev["queue.deleted"][0], amqp091.Table{"vhost": "/", "name": qname, "user_who_performed_action": "guest"})
	requireEvent(t, ev["exchange.deleted"][0], amqp091.Table{"vhost": "/", "name": xname, "user_who_performed_action": "guest"})
	requireEvent(t, ev["connection.closed"][0], amqp091.Table{"name": connName, "pid": pid, "user_provided_name": cname},
		"node", "client_properties")

	// A failed login: user.authentication.failure, whose error is a list
	// of character codes.
	user := "ev-nobody-" + id
	_, err = amqp091.Dial(strings.Replace(b.URL, "guest:guest", user+":wrong", 1))
	require.Error(t, err)
	fail := w.collect(func(d amqp091.Delivery) bool { return d.Headers["name"] == user }, "user.authentication.failure")
	d := fail["user.authentication.failure"][0]
	reason := "user '" + user + "' - invalid credentials"
	codes := make([]any, len(reason))
	for i := range reason {
		codes[i] = int64(reason[i])
	}
	requireEvent(t, d, amqp091.Table{"name": user, "auth_mechanism": "PLAIN", "connection_type": "network",
		"protocol": "{0,9,1}", "ssl": false, "error": codes}, "connection_name", "host", "peer_host", "peer_port")
}

// TestEventExchangeExclusiveQueue: an exclusive queue names its owner's
// connection, and goes with it as rmq-internal; consumers of a closed
// connection are deleted as rmq-internal too.
func TestEventExchangeExclusiveQueue(t *testing.T) {
	b := startBroker(t)
	w := watchEvents(t, b.URL)
	id := fmt.Sprintf("%x", rand.Uint64())
	qname := "ev-ex-" + id
	conn, err := amqp091.DialConfig(b.URL, amqp091.Config{Properties: amqp091.Table{"connection_name": "ev-conn-" + id}})
	require.NoError(t, err)
	ch, err := conn.Channel()
	require.NoError(t, err)
	_, err = ch.QueueDeclare(qname, false, true, true, false, nil)
	require.NoError(t, err)
	_, err = ch.Consume(qname, "ctag-"+id, false, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, conn.Close())

	ours := func(d amqp091.Delivery) bool {
		for _, k := range []string{"name", "queue", "user_provided_name"} {
			if s, _ := d.Headers[k].(string); strings.Contains(s, id) {
				return true
			}
		}
		return false
	}
	ev := w.collect(ours, "connection.created", "queue.created", "consumer.created", "consumer.deleted", "queue.deleted")
	pid := ev["connection.created"][0].Headers["pid"]
	requireEvent(t, ev["queue.created"][0], amqp091.Table{
		"vhost": "/", "name": qname, "durable": false, "auto_delete": true, "exclusive": true, "owner_pid": pid,
		"arguments": []any(nil), "user_who_performed_action": "guest",
	})
	del := ev["consumer.deleted"][0]
	requireEvent(t, del, amqp091.Table{"vhost": "/", "queue": qname, "consumer_tag": "ctag-" + id,
		"user_who_performed_action": "rmq-internal"}, "channel")
	requireEvent(t, ev["queue.deleted"][0], amqp091.Table{"vhost": "/", "name": qname, "user_who_performed_action": "rmq-internal"})
}

// TestEventExchangeServerOps: users, vhosts, permissions and policies
// changed through the management API, with RabbitMQ's events (checked on
// RabbitMQ 3.10.8 through its management API); a vhost's events reach the
// default vhost's exchange with a vhost header.
func TestEventExchangeServerOps(t *testing.T) {
	b := newAdminBroker(t)
	w := watchEvents(t, b.srv.URL)
	b.mustDo(http.StatusCreated, "PUT", "/api/vhosts/evp", map[string]any{"description": "d", "tags": "t1,t2"})
	b.mustDo(http.StatusNoContent, "PUT", "/api/permissions/evp/guest", map[string]any{"configure": ".*", "write": ".*", "read": ".*"})
	b.mustDo(http.StatusCreated, "PUT", "/api/users/evu", map[string]any{"password": "p1", "tags": "monitoring"})
	b.mustDo(http.StatusNoContent, "PUT", "/api/users/evu", map[string]any{"password": "p2", "tags": "monitoring"})
	b.mustDo(http.StatusCreated, "PUT", "/api/policies/evp/pol", map[string]any{"pattern": "^ev", "definition": map[string]any{"max-length": 5}, "priority": 1, "apply-to": "queues"})
	b.mustDo(http.StatusNoContent, "DELETE", "/api/policies/evp/pol", nil)
	b.mustDo(http.StatusNoContent, "DELETE", "/api/permissions/evp/guest", nil)
	b.mustDo(http.StatusNoContent, "DELETE", "/api/users/evu", nil)
	b.mustDo(http.StatusNoContent, "DELETE", "/api/vhosts/evp", nil)

	all := func(d amqp091.Delivery) bool { return true }
	ev := w.collect(all, "vhost.created", "permission.created", "user.created", "user.tags.set", "user.password.changed",
		"user.tags.set", "policy.set", "policy.cleared", "permission.deleted", "user.deleted", "vhost.deleted")

	requireEvent(t, ev["vhost.created"][0], amqp091.Table{
		"name": "evp", "description": "d", "tags": []any{"t1", "t2"}, "tracing": false,
		"metadata": `#{description => <<"d">>,tags => [t1,t2]}`, "default_queue_type": "undefined",
		"user_who_performed_action": "guest",
	}, "cluster_state")
	// The new vhost's predeclared exchanges, announced in the default vhost.
	found := false
	for _, d := range ev["exchange.created"] {
		if d.Headers["vhost"] == "evp" && d.Headers["name"] == "amq.direct" {
			found = true
		}
	}
	require.True(t, found, "exchange.created for evp's amq.direct")
	requireEvent(t, ev["permission.created"][0], amqp091.Table{"vhost": "evp", "user": "guest",
		"configure": ".*", "write": ".*", "read": ".*", "user_who_performed_action": "guest"})
	requireEvent(t, ev["user.created"][0], amqp091.Table{"name": "evu", "user_who_performed_action": "guest"})
	for _, d := range ev["user.tags.set"] {
		requireEvent(t, d, amqp091.Table{"name": "evu", "tags": []any{"monitoring"}, "user_who_performed_action": "guest"})
	}
	requireEvent(t, ev["user.password.changed"][0], amqp091.Table{"name": "evu", "user_who_performed_action": "guest"})
	requireEvent(t, ev["policy.set"][0], amqp091.Table{"vhost": "evp", "name": "pol", "pattern": "^ev",
		"apply-to": "queues", "priority": int64(1), "definition": amqp091.Table{"max-length": int64(5)},
		"user_who_performed_action": "guest"})
	requireEvent(t, ev["policy.cleared"][0], amqp091.Table{"vhost": "evp", "name": "pol", "user_who_performed_action": "guest"})
	requireEvent(t, ev["permission.deleted"][0], amqp091.Table{"vhost": "evp", "user": "guest", "user_who_performed_action": "guest"})
	requireEvent(t, ev["user.deleted"][0], amqp091.Table{"name": "evu", "user_who_performed_action": "guest"})
	requireEvent(t, ev["vhost.deleted"][0], amqp091.Table{"name": "evp", "user_who_performed_action": "guest"})
}

// TestEventExchangeQueueDeletedUnderConsumer: a consumer whose queue is
// deleted is reported deleted (RabbitMQ sends two such events, the first
// naming the deleting user; Warren one, naming nobody: see README).
func TestEventExchangeQueueDeletedUnderConsumer(t *testing.T) {
	b := startBroker(t)
	w := watchEvents(t, b.URL)
	id := fmt.Sprintf("%x", rand.Uint64())
	qname := "ev-qd-" + id
	_, ch := b.channel(t)
	_, err := ch.QueueDeclare(qname, false, false, false, false, nil)
	require.NoError(t, err)
	b.cleanupQueue(t, qname)
	_, err = ch.Consume(qname, "ctag-"+id, false, false, false, false, nil)
	require.NoError(t, err)
	_, err = ch.QueueDelete(qname, false, false, false)
	require.NoError(t, err)
	ev := w.collect(func(d amqp091.Delivery) bool {
		return d.Headers["queue"] == qname || d.Headers["name"] == qname
	}, "consumer.created", "consumer.deleted", "queue.deleted")
	d := ev["consumer.deleted"][0]
	require.Equal(t, "ctag-"+id, d.Headers["consumer_tag"])
	require.Equal(t, "/", d.Headers["vhost"])
	require.Equal(t, ev["consumer.created"][0].Headers["channel"], d.Headers["channel"])
	requireEvent(t, ev["queue.deleted"][0], amqp091.Table{"vhost": "/", "name": qname, "user_who_performed_action": "guest"})
}
