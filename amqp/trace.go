package amqp

import (
	"os"
	"strings"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/vhost"
)

// The firehose (rabbitmqctl trace_on): with a vhost's tracing on, every
// publish becomes a message to amq.rabbitmq.trace with routing key
// "publish.{exchange}", and every delivery one with "deliver.{queue}",
// carrying the original body and RabbitMQ's headers. Messages that came
// through the trace exchange are not traced again. When tracing is off the
// publish and delivery paths pay one atomic load (vhost.Tracing).

// traceNode is the node header of trace messages.
var traceNode = func() string {
	h, _ := os.Hostname()
	return "warren@" + h
}()

// traceProperties is a message's properties as rabbit_trace writes them:
// the ones present, integers as signed 32-bit ints, headers as a table.
func traceProperties(raw []byte) wire.Table {
	var p wire.Properties
	t := wire.Table{}
	if p.Decode(raw) != nil {
		return t
	}
	str := func(flag uint16, name, v string) {
		if p.Present&flag != 0 || v != "" {
			t[name] = v
		}
	}
	str(wire.FlagContentType, "content_type", p.ContentType)
	str(wire.FlagContentEncoding, "content_encoding", p.ContentEncoding)
	if p.Headers != nil {
		t["headers"] = p.Headers
	}
	if p.Present&wire.FlagDeliveryMode != 0 || p.DeliveryMode != 0 {
		t["delivery_mode"] = int32(p.DeliveryMode)
	}
	if p.Present&wire.FlagPriority != 0 || p.Priority != 0 {
		t["priority"] = int32(p.Priority)
	}
	str(wire.FlagCorrelationID, "correlation_id", p.CorrelationID)
	str(wire.FlagReplyTo, "reply_to", p.ReplyTo)
	str(wire.FlagExpiration, "expiration", p.Expiration)
	str(wire.FlagMessageID, "message_id", p.MessageID)
	if p.Present&wire.FlagTimestamp != 0 || p.Timestamp != 0 {
		t["timestamp"] = int32(p.Timestamp)
	}
	str(wire.FlagType, "type", p.Type)
	str(wire.FlagUserID, "user_id", p.UserID)
	str(wire.FlagAppID, "app_id", p.AppID)
	str(wire.FlagClusterID, "cluster_id", p.ClusterID)
	return t
}

func stringsArray(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// traceMessage publishes one trace message to c's vhost.
func (c *conn) traceMessage(key string, headers wire.Table, body []byte) {
	props := (&wire.Properties{Headers: headers, Present: wire.FlagHeaders}).Append(nil)
	c.vh.PublishTrace(key, props, body)
}

// traceCommon are the headers of both kinds of trace message.
func (c *conn) traceCommon(channel uint16, m *queue.Message) wire.Table {
	return wire.Table{
		"exchange_name": m.Exchange,
		"properties":    traceProperties(m.Properties),
		"node":          traceNode,
		"vhost":         c.vh.Name,
		"channel":       int32(channel),
		"connection":    c.info().Name,
		"user":          c.user.Name(),
	}
}

// tracePublish traces a routed publish; routed names its queues.
func (ch *channel) tracePublish(p *vhost.Publishing, routed []string) {
	m := p.Message
	if m.Exchange == vhost.TraceExchange {
		return
	}
	if p.Exchange == "" && strings.HasPrefix(p.RoutingKey, vhost.ReplyToPrefix) {
		routed = nil // a direct reply goes to a channel, not a queue
	}
	h := ch.c.traceCommon(ch.id, m)
	keys := append(append([]string{m.RoutingKey}, p.CC...), p.BCC...)
	h["routing_keys"] = stringsArray(keys)
	h["routed_queues"] = stringsArray(routed)
	ch.c.traceMessage("publish."+m.Exchange, h, m.Body)
}

// pendingTrace is a delivery to trace once no queue lock is held.
type pendingTrace struct {
	channel     uint16
	queue       string
	m           *queue.Message
	redelivered bool
}

// traceDeliver traces one delivery (or basic.get-ok).
func (c *conn) traceDeliver(t pendingTrace) {
	if t.m.Exchange == vhost.TraceExchange {
		return
	}
	h := c.traceCommon(t.channel, t.m)
	h["routing_keys"] = []any{t.m.RoutingKey}
	redelivered := int32(0)
	if t.redelivered {
		redelivered = 1
	}
	h["redelivered"] = redelivered
	c.traceMessage("deliver."+t.queue, h, t.m.Body)
}
