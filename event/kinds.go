package event

import (
	"encoding/json"
	"math"

	"github.com/warrenmq/warren/amqp/wire"
)

// The events, one function per routing key, each returning the headers
// RabbitMQ 3.10's rabbitmq_event_exchange sends with it (seen on the wire:
// integers as long, booleans as bool, arguments and client properties as
// lists of Erlang terms, see Terms). actor is user_who_performed_action.

// QueueCreated is "queue.created". ownerPid is the owning connection's pid
// for an exclusive queue, "" otherwise.
func QueueCreated(vhost, name string, durable, autoDelete, exclusive bool, ownerPid string, args map[string]any, actor string) wire.Table {
	return wire.Table{
		"vhost": vhost, "name": name, "durable": durable, "auto_delete": autoDelete,
		"exclusive": exclusive, "owner_pid": ownerPid, "arguments": Terms(args),
		"user_who_performed_action": actor,
	}
}

// QueueDeleted is "queue.deleted".
func QueueDeleted(vhost, name, actor string) wire.Table {
	return wire.Table{"vhost": vhost, "name": name, "user_who_performed_action": actor}
}

// ExchangeCreated is "exchange.created"; policy is the name of the policy
// that applies to it, or "".
func ExchangeCreated(vhost, name, kind string, durable, autoDelete, internal bool, args map[string]any, policy, actor string) wire.Table {
	return wire.Table{
		"vhost": vhost, "name": name, "type": kind, "durable": durable,
		"auto_delete": autoDelete, "internal": internal, "arguments": Terms(args),
		"policy": policy, "user_who_performed_action": actor,
	}
}

// ExchangeDeleted is "exchange.deleted".
func ExchangeDeleted(vhost, name, actor string) wire.Table {
	return wire.Table{"vhost": vhost, "name": name, "user_who_performed_action": actor}
}

// Binding is "binding.created" and "binding.deleted".
func Binding(vhost, source, destination string, toExchange bool, key string, args map[string]any, actor string) wire.Table {
	kind := "queue"
	if toExchange {
		kind = "exchange"
	}
	return wire.Table{
		"vhost": vhost, "source_name": source, "source_kind": "exchange",
		"destination_name": destination, "destination_kind": kind,
		"routing_key": key, "arguments": Terms(args), "user_who_performed_action": actor,
	}
}

// ConsumerCreated is "consumer.created"; channel is the channel's pid and
// prefetch its basic.qos prefetch count.
func ConsumerCreated(vhost, queue, tag, channel string, exclusive, ackRequired bool, prefetch int, args map[string]any, actor string) wire.Table {
	return wire.Table{
		"vhost": vhost, "queue": queue, "consumer_tag": tag, "channel": channel,
		"exclusive": exclusive, "ack_required": ackRequired, "prefetch_count": int64(prefetch),
		"arguments": Terms(args), "user_who_performed_action": actor,
	}
}

// ConsumerDeleted is "consumer.deleted".
func ConsumerDeleted(vhost, queue, tag, channel, actor string) wire.Table {
	return wire.Table{
		"vhost": vhost, "queue": queue, "consumer_tag": tag, "channel": channel,
		"user_who_performed_action": actor,
	}
}

// ChannelCreated is "channel.created"; name is the connection's name and
// " (number)".
func ChannelCreated(vhost, user, name, pid, connPid string, number uint16) wire.Table {
	return wire.Table{
		"vhost": vhost, "user": user, "name": name, "number": int64(number), "pid": pid,
		"connection": connPid, "user_who_performed_action": user,
	}
}

// ChannelClosed is "channel.closed".
func ChannelClosed(pid, user string) wire.Table {
	return wire.Table{"pid": pid, "user_who_performed_action": user}
}

// Peer is what the connection events say about the socket.
type Peer struct {
	Name     string // "client:port -> server:port", as RabbitMQ names connections
	Pid      string
	Host     string // the server's address, as an Erlang tuple (IPTerm)
	Port     int
	PeerHost string // the client's address, as an Erlang tuple
	PeerPort int
	TLS      bool
}

func (p Peer) common(h wire.Table) wire.Table {
	h["host"], h["peer_host"], h["peer_port"] = p.Host, p.PeerHost, int64(p.PeerPort)
	h["protocol"], h["ssl"] = "{0,9,1}", p.TLS
	return h
}

// ConnectionCreated is "connection.created". userProvidedName is the
// client's connection_name property, or "" (then there is no such header).
func ConnectionCreated(p Peer, node, vhost, user, mechanism string, channelMax uint16, frameMax uint32, heartbeat int, connectedAtMs int64, clientProps map[string]any, userProvidedName string) wire.Table {
	h := p.common(wire.Table{
		"vhost": vhost, "user": user, "user_who_performed_action": user,
		"name": p.Name, "pid": p.Pid, "node": node, "type": "network", "port": int64(p.Port),
		"auth_mechanism": mechanism, "channel_max": int64(channelMax), "frame_max": int64(frameMax),
		"timeout": int64(heartbeat), "connected_at": connectedAtMs, "client_properties": Terms(clientProps),
		"peer_cert_issuer": "", "peer_cert_subject": "", "peer_cert_validity": "",
		"ssl_cipher": "", "ssl_hash": "", "ssl_key_exchange": "", "ssl_protocol": "",
	})
	if userProvidedName != "" {
		h["user_provided_name"] = userProvidedName
	}
	return h
}

// ConnectionClosed is "connection.closed".
func ConnectionClosed(name, pid, node string, clientProps map[string]any, userProvidedName string) wire.Table {
	h := wire.Table{"name": name, "pid": pid, "node": node, "client_properties": Terms(clientProps)}
	if userProvidedName != "" {
		h["user_provided_name"] = userProvidedName
	}
	return h
}

// AuthenticationSuccess is "user.authentication.success".
func AuthenticationSuccess(p Peer, user, mechanism string) wire.Table {
	return p.common(wire.Table{
		"name": user, "auth_mechanism": mechanism, "connection_name": p.Name, "connection_type": "network",
	})
}

// AuthenticationFailure is "user.authentication.failure". reason is
// RabbitMQ's message, such as "user 'guest' - invalid credentials"; it
// goes out as a list of character codes (an Erlang string), as RabbitMQ's.
func AuthenticationFailure(p Peer, user, mechanism, reason string) wire.Table {
	h := AuthenticationSuccess(p, user, mechanism)
	codes := make([]any, 0, len(reason))
	for _, r := range reason {
		codes = append(codes, int64(r))
	}
	h["error"] = codes
	return h
}

// User is "user.created", "user.password.changed" and "user.deleted".
func User(name, actor string) wire.Table {
	return wire.Table{"name": name, "user_who_performed_action": actor}
}

// UserTags is "user.tags.set".
func UserTags(name string, tags []string, actor string) wire.Table {
	return wire.Table{"name": name, "tags": stringList(tags), "user_who_performed_action": actor}
}

// VhostCreated is "vhost.created".
func VhostCreated(name, description string, tags []string, node string, tracing bool, actor string) wire.Table {
	return wire.Table{
		"name": name, "description": description, "tags": stringList(tags),
		"metadata":           VhostMetadata(description, tags),
		"default_queue_type": "undefined", "tracing": tracing,
		"cluster_state":             wire.Table{node: "running"},
		"user_who_performed_action": actor,
	}
}

// VhostMetadata is the vhost's metadata as the Erlang map RabbitMQ prints:
// #{description => <<"d">>,tags => [t1,t2]}.
func VhostMetadata(description string, tags []string) string {
	s := "#{description => " + Binary(description) + ",tags => ["
	for i, t := range tags {
		if i > 0 {
			s += ","
		}
		s += Atom(t)
	}
	return s + "]}"
}

// VhostDeleted is "vhost.deleted".
func VhostDeleted(name, actor string) wire.Table {
	return wire.Table{"name": name, "user_who_performed_action": actor}
}

// VhostDown is "vhost.down", which follows a vhost's deletion.
func VhostDown(name, node string) wire.Table {
	return wire.Table{"name": name, "node": node, "user_who_performed_action": Internal}
}

// PermissionCreated is "permission.created" (also when permissions are
// replaced).
func PermissionCreated(vhost, user, configure, write, read, actor string) wire.Table {
	return wire.Table{
		"vhost": vhost, "user": user, "configure": configure, "write": write, "read": read,
		"user_who_performed_action": actor,
	}
}

// PermissionDeleted is "permission.deleted".
func PermissionDeleted(vhost, user, actor string) wire.Table {
	return wire.Table{"vhost": vhost, "user": user, "user_who_performed_action": actor}
}

// PolicySet is "policy.set".
func PolicySet(vhost, name, pattern, applyTo string, priority int, definition map[string]any, actor string) wire.Table {
	return wire.Table{
		"vhost": vhost, "name": name, "pattern": pattern, "apply-to": applyTo,
		"priority": int64(priority), "definition": jsonTable(definition),
		"user_who_performed_action": actor,
	}
}

// PolicyCleared is "policy.cleared".
func PolicyCleared(vhost, name, actor string) wire.Table {
	return wire.Table{"vhost": vhost, "name": name, "user_who_performed_action": actor}
}

// jsonTable is a JSON object (a policy definition) as a field table:
// whole numbers as long, as RabbitMQ sends them.
func jsonTable(m map[string]any) wire.Table {
	t := make(wire.Table, len(m))
	for k, v := range m {
		t[k] = jsonValue(v)
	}
	return t
}

func jsonValue(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<63 {
			return int64(v)
		}
		return v
	case int:
		return int64(v)
	case map[string]any:
		return jsonTable(v)
	case wire.Table:
		return jsonTable(v)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = jsonValue(x)
		}
		return out
	}
	return v
}

func stringList(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
