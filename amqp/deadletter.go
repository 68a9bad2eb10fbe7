package amqp

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/vhost"
)

// codec implements vhost.Codec with the wire encoding.
type codec struct{}

// EncodeTable implements vhost.Codec.
func (codec) EncodeTable(t map[string]any) []byte { return wire.AppendTable(nil, wire.Table(t)) }

// DecodeTable implements vhost.Codec; nested tables come back as plain maps,
// as the broker core handles them.
func (codec) DecodeTable(b []byte) (map[string]any, error) {
	t, _, err := wire.DecodeTable(b)
	if err != nil {
		return nil, err
	}
	return plain(t).(map[string]any), nil
}

func plain(v any) any {
	switch v := v.(type) {
	case wire.Table:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = plain(x)
		}
		return m
	case []any:
		for i, x := range v {
			v[i] = plain(x)
		}
	}
	return v
}

// DeadLetter implements vhost.Codec: it records a death in the message's
// x-death header the way RabbitMQ 3.10 does.
func (codec) DeadLetter(m *queue.Message, d vhost.Death) (vhost.Publishing, []vhost.DeathKey) {
	var props wire.Properties
	_ = props.Decode(m.Properties) // it decoded when published
	headers := props.Headers
	if headers == nil {
		headers = wire.Table{}
	}
	// The routing keys a message had: its key and its CC keys (BCC never
	// reaches a queue).
	keys := append([]string{m.RoutingKey}, routingKeys(headers["CC"])...)
	rks := make([]any, len(keys))
	for i, k := range keys {
		rks[i] = k
	}
	death := wire.Table{
		"count":        int64(1),
		"reason":       string(d.Reason),
		"queue":        d.Queue,
		"time":         d.Time.Truncate(1e9).UTC(),
		"exchange":     m.Exchange,
		"routing-keys": rks,
	}
	if props.Present&wire.FlagExpiration != 0 || props.Expiration != "" {
		// The message must not expire again on its way: its TTL moves into
		// the record.
		death["original-expiration"] = props.Expiration
		props.Expiration = ""
		props.Present &^= wire.FlagExpiration
	}

	// One entry per queue and reason, most recent first: a repeat bumps the
	// count of the existing entry and moves it to the front.
	old, _ := headers["x-death"].([]any)
	deaths := make([]any, 0, len(old)+1)
	deaths = append(deaths, death)
	for _, x := range old {
		t, ok := x.(wire.Table)
		if ok && death != nil && t["queue"] == d.Queue && t["reason"] == string(d.Reason) {
			bumped := make(wire.Table, len(t))
			for k, v := range t {
				bumped[k] = v
			}
			n, _ := queue.IntArg(t["count"])
			bumped["count"] = n + 1
			deaths[0] = bumped
			death = nil
			continue
		}
		deaths = append(deaths, x)
	}
	headers["x-death"] = deaths
	if _, ok := headers["x-first-death-reason"]; !ok {
		headers["x-first-death-reason"] = string(d.Reason)
		headers["x-first-death-queue"] = d.Queue
		headers["x-first-death-exchange"] = m.Exchange
	}
	props.Headers = headers

	if d.HasRoutingKey {
		// The dead-letter routing key replaces all the message's keys, so
		// its CC list goes too, as in RabbitMQ.
		keys = []string{d.RoutingKey}
		delete(headers, "CC")
	}
	out := &queue.Message{
		Exchange:   d.DeadLetterExchange,
		RoutingKey: keys[0],
		Properties: props.Append(make([]byte, 0, len(m.Properties)+128)),
		Body:       m.Body,
		Persistent: m.Persistent,
		Priority:   m.Priority,
	}
	history := make([]vhost.DeathKey, 0, len(deaths))
	for _, x := range deaths {
		if t, ok := x.(wire.Table); ok {
			q, _ := t["queue"].(string)
			r, _ := t["reason"].(string)
			history = append(history, vhost.DeathKey{Queue: q, Reason: queue.Reason(r)})
		}
	}
	return vhost.Publishing{
		Exchange: d.DeadLetterExchange, RoutingKey: keys[0], CC: keys[1:],
		Headers: headers, Message: out,
	}, history
}

// parseExpiration reads the expiration property as RabbitMQ does
// (string:to_integer, then the expiry range check), with its error terms.
func parseExpiration(s string) (int64, error) {
	digits := strings.TrimLeft(s, "+-")
	signLen := len(s) - len(digits)
	end := 0
	for end < len(digits) && digits[end] >= '0' && digits[end] <= '9' {
		end++
	}
	if end == 0 || signLen > 1 {
		return 0, fmt.Errorf("no_integer")
	}
	n, err := strconv.ParseInt(s[:signLen+end], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("{value_too_large,%s}", s[:signLen+end])
	}
	if rest := digits[end:]; rest != "" {
		return 0, fmt.Errorf("{leftover_string,%q}", rest)
	}
	switch {
	case n < 0:
		return 0, fmt.Errorf("{value_negative,%d}", n)
	case n > queue.MaxExpiry:
		return 0, fmt.Errorf("{value_too_large,%d}", n)
	}
	return n, nil
}

// withHeader returns encoded properties with one header set, for the
// per-delivery x-delivery-count.
func withHeader(encoded []byte, key string, value any) []byte {
	var props wire.Properties
	if props.Decode(encoded) != nil {
		return encoded
	}
	h := make(wire.Table, len(props.Headers)+1)
	for k, v := range props.Headers {
		h[k] = v
	}
	h[key] = value
	props.Headers = h
	return props.Append(make([]byte, 0, len(encoded)+32))
}
