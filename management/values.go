package management

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/broker"
)

// propertiesJSON renders basic properties with RabbitMQ's API names; only
// the ones present appear.
func propertiesJSON(p *wire.Properties) map[string]any {
	out := map[string]any{}
	set := func(k, v string, flag uint16) {
		if v != "" || p.Present&flag != 0 {
			out[k] = v
		}
	}
	set("content_type", p.ContentType, wire.FlagContentType)
	set("content_encoding", p.ContentEncoding, wire.FlagContentEncoding)
	if p.Headers != nil {
		out["headers"] = broker.JSONTable(p.Headers)
	}
	if p.DeliveryMode != 0 {
		out["delivery_mode"] = p.DeliveryMode
	}
	if p.Priority != 0 || p.Present&wire.FlagPriority != 0 {
		out["priority"] = p.Priority
	}
	set("correlation_id", p.CorrelationID, wire.FlagCorrelationID)
	set("reply_to", p.ReplyTo, wire.FlagReplyTo)
	set("expiration", p.Expiration, wire.FlagExpiration)
	set("message_id", p.MessageID, wire.FlagMessageID)
	if p.Timestamp != 0 {
		out["timestamp"] = p.Timestamp
	}
	set("type", p.Type, wire.FlagType)
	set("user_id", p.UserID, wire.FlagUserID)
	set("app_id", p.AppID, wire.FlagAppID)
	set("cluster_id", p.ClusterID, wire.FlagClusterID)
	return out
}

// parseProperties reads RabbitMQ's API properties object.
func parseProperties(m map[string]any) (wire.Properties, error) {
	var p wire.Properties
	str := func(k string) string {
		switch v := m[k].(type) {
		case string:
			return v
		case json.Number:
			return v.String()
		}
		return ""
	}
	num := func(k string) (int64, error) {
		switch v := m[k].(type) {
		case nil:
			return 0, nil
		case json.Number:
			return v.Int64()
		case float64:
			return int64(v), nil
		case string:
			return strconv.ParseInt(v, 10, 64)
		}
		return 0, fmt.Errorf("property %s must be a number", k)
	}
	p.ContentType, p.ContentEncoding = str("content_type"), str("content_encoding")
	p.CorrelationID, p.ReplyTo, p.Expiration = str("correlation_id"), str("reply_to"), str("expiration")
	p.MessageID, p.Type, p.UserID, p.AppID, p.ClusterID = str("message_id"), str("type"), str("user_id"), str("app_id"), str("cluster_id")
	dm, err := num("delivery_mode")
	if err != nil {
		return p, err
	}
	pr, err := num("priority")
	if err != nil {
		return p, err
	}
	ts, err := num("timestamp")
	if err != nil {
		return p, err
	}
	if dm < 0 || dm > 2 || pr < 0 || pr > 255 || ts < 0 {
		return p, fmt.Errorf("property out of range")
	}
	p.DeliveryMode, p.Priority, p.Timestamp = uint8(dm), uint8(pr), uint64(ts)
	if h, ok := m["headers"].(map[string]any); ok && len(h) > 0 {
		p.Headers = wire.Table(broker.TableArgs(h))
	}
	return p, nil
}

// payloadJSON encodes a body as RabbitMQ's get does: "auto" gives a string
// when the body is UTF-8, base64 otherwise.
func payloadJSON(body []byte, encoding string, truncate int) (string, string) {
	if truncate > 0 && len(body) > truncate {
		body = body[:truncate]
	}
	if encoding != "base64" && utf8.Valid(body) {
		return string(body), "string"
	}
	return base64.StdEncoding.EncodeToString(body), "base64"
}
