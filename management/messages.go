package management

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/vhost"
)

// messageJSON is one message as POST .../get returns it.
type messageJSON struct {
	PayloadBytes    int            `json:"payload_bytes"`
	Redelivered     bool           `json:"redelivered"`
	Exchange        string         `json:"exchange"`
	RoutingKey      string         `json:"routing_key"`
	MessageCount    int            `json:"message_count"`
	Properties      map[string]any `json:"properties"`
	Payload         string         `json:"payload"`
	PayloadEncoding string         `json:"payload_encoding"`
}

func messageOf(d queue.Delivery, remaining int, encoding string, truncate int) (messageJSON, *wire.Properties) {
	var p wire.Properties
	_ = p.Decode(d.Message.Properties) // it decoded when published
	m := messageJSON{
		PayloadBytes: len(d.Message.Body), Redelivered: d.Redelivered, Exchange: d.Message.Exchange,
		RoutingKey: d.Message.RoutingKey, MessageCount: remaining, Properties: propertiesJSON(&p),
	}
	m.Payload, m.PayloadEncoding = payloadJSON(d.Message.Body, encoding, truncate)
	return m, &p
}

// take gets up to n messages, unacked, so that they can all go back at
// once: requeueing one at a time would hand the same message out again.
func take(q queue.Interface, n int) ([]queue.Delivery, []int) {
	var ds []queue.Delivery
	var left []int
	for range n {
		d, remaining, ok := q.Get(false)
		if !ok {
			break
		}
		ds = append(ds, d)
		left = append(left, remaining)
	}
	return ds, left
}

func (a *API) getMessages(q *request, v *vhost.VHost, qu queue.Interface) {
	var body struct {
		Count    json.Number `json:"count"`
		AckMode  string      `json:"ackmode"`
		Requeue  any         `json:"requeue"` // before 3.7
		Encoding string      `json:"encoding"`
		Truncate json.Number `json:"truncate"`
	}
	if !readBody(q, &body) {
		return
	}
	count, err := body.Count.Int64()
	if err != nil || count < 1 {
		badRequest(q.w, "count must be a positive integer")
		return
	}
	truncate, _ := body.Truncate.Int64()
	mode := body.AckMode
	if mode == "" {
		mode = "ack_requeue_true"
		if r, ok := body.Requeue.(string); ok && r == "false" {
			mode = "ack_requeue_false"
		} else if r, ok := body.Requeue.(bool); ok && !r {
			mode = "ack_requeue_false"
		}
	}
	switch mode {
	case "ack_requeue_true", "ack_requeue_false", "reject_requeue_true", "reject_requeue_false":
	default:
		badRequest(q.w, "unknown ackmode "+mode)
		return
	}
	switch body.Encoding {
	case "", "auto", "base64":
	default:
		badRequest(q.w, "unknown encoding "+body.Encoding)
		return
	}
	ds, left := take(qu, int(min(count, 10000)))
	out := make([]messageJSON, len(ds))
	for i, d := range ds {
		out[i], _ = messageOf(d, left[i], body.Encoding, int(truncate))
	}
	switch mode {
	case "ack_requeue_true", "reject_requeue_true":
		qu.Requeue(ds)
	case "ack_requeue_false":
		qu.Ack(ds)
	case "reject_requeue_false":
		qu.Reject(ds)
	}
	writeJSON(q.w, 200, out)
}

// publishBody is POST /api/exchanges/{vhost}/{name}/publish.
type publishBody struct {
	Properties      map[string]any `json:"properties"`
	RoutingKey      string         `json:"routing_key"`
	Payload         string         `json:"payload"`
	PayloadEncoding string         `json:"payload_encoding"`
}

func (a *API) publish(q *request, v *vhost.VHost, exchangeName string) {
	var body publishBody
	if !readBody(q, &body) {
		return
	}
	props, err := parseProperties(body.Properties)
	if err != nil {
		badRequest(q.w, err.Error())
		return
	}
	payload := []byte(body.Payload)
	switch body.PayloadEncoding {
	case "", "string":
	case "base64":
		if payload, err = base64.StdEncoding.DecodeString(body.Payload); err != nil {
			badRequest(q.w, "payload is not base64")
			return
		}
	default:
		badRequest(q.w, "unknown payload_encoding "+body.PayloadEncoding)
		return
	}
	msg := &queue.Message{Exchange: exchangeName, RoutingKey: body.RoutingKey, Properties: props.Append(nil),
		Body: payload, Persistent: props.DeliveryMode == 2, Priority: props.Priority}
	if props.Expiration != "" {
		ttl, err := strconv.ParseInt(props.Expiration, 10, 64)
		if err != nil || ttl < 0 || ttl > queue.MaxExpiry {
			badRequest(q.w, "invalid expiration '"+props.Expiration+"'")
			return
		}
		msg.Expiration, msg.HasExpiration = ttl, true
	}
	p := &vhost.Publishing{Exchange: exchangeName, RoutingKey: body.RoutingKey, Message: msg}
	if props.Headers != nil {
		p.Headers = props.Headers
	}
	routed, err := publishSync(v, p)
	if err != nil {
		brokerError(q.w, err)
		return
	}
	writeJSON(q.w, 200, map[string]bool{"routed": routed.Queues > 0})
}

// publishSync publishes and, for a stored message, waits until it is on disk.
func publishSync(v *vhost.VHost, p *vhost.Publishing) (vhost.Routed, error) {
	done := make(chan error, 1)
	var s vhost.Scratch
	r, err := v.Publish(p, &s, func(err error) { done <- err })
	if err != nil {
		return r, err
	}
	if r.Stored {
		if err := <-done; err != nil {
			return r, err
		}
	}
	return r, nil
}

func (a *API) aliveness(q *request) {
	v := a.vhost(q, q.segs[1])
	if v == nil {
		return
	}
	const name = "aliveness-test"
	if _, err := v.Apply(vhost.DeclareQueue{Name: name}); err != nil {
		writeJSON(q.w, 503, map[string]string{"status": "failed", "reason": err.Error()})
		return
	}
	msg := &queue.Message{Exchange: "", RoutingKey: name, Properties: (&wire.Properties{}).Append(nil), Body: []byte("test_message")}
	if _, err := publishSync(v, &vhost.Publishing{RoutingKey: name, Message: msg}); err != nil {
		writeJSON(q.w, 503, map[string]string{"status": "failed", "reason": err.Error()})
		return
	}
	qu := findQueue(v, name)
	if qu == nil {
		writeJSON(q.w, 503, map[string]string{"status": "failed", "reason": "aliveness-test queue vanished"})
		return
	}
	if _, _, ok := qu.Get(true); !ok {
		writeJSON(q.w, 503, map[string]string{"status": "failed", "reason": "aliveness-test queue is empty"})
		return
	}
	writeJSON(q.w, 200, map[string]string{"status": "ok"})
}

// ---- dead letters ----

// deathJSON is one x-death entry.
type deathJSON struct {
	Queue              string   `json:"queue"`
	Reason             string   `json:"reason"`
	Count              int64    `json:"count"`
	Exchange           string   `json:"exchange"`
	RoutingKeys        []string `json:"routing-keys"`
	Time               int64    `json:"time"`
	OriginalExpiration string   `json:"original-expiration,omitempty"`
}

// deaths decodes the x-death header, most recent first.
func deaths(p *wire.Properties) []deathJSON {
	list, _ := p.Headers["x-death"].([]any)
	out := make([]deathJSON, 0, len(list))
	for _, x := range list {
		t, ok := x.(wire.Table)
		if !ok {
			continue
		}
		var d deathJSON
		d.Queue, _ = t["queue"].(string)
		d.Reason, _ = t["reason"].(string)
		d.Exchange, _ = t["exchange"].(string)
		d.OriginalExpiration, _ = t["original-expiration"].(string)
		d.Count, _ = queue.IntArg(t["count"])
		if tm, ok := broker.JSONValue(t["time"]).(int64); ok {
			d.Time = tm
		}
		if rks, ok := t["routing-keys"].([]any); ok {
			for _, k := range rks {
				switch k := k.(type) {
				case string:
					d.RoutingKeys = append(d.RoutingKeys, k)
				case []byte:
					d.RoutingKeys = append(d.RoutingKeys, string(k))
				}
			}
		}
		out = append(out, d)
	}
	return out
}

// deadLetterJSON is a dead letter with its history decoded.
type deadLetterJSON struct {
	messageJSON
	XDeath             []deathJSON `json:"x_death"`
	FirstDeathReason   string      `json:"first_death_reason,omitempty"`
	FirstDeathQueue    string      `json:"first_death_queue,omitempty"`
	FirstDeathExchange string      `json:"first_death_exchange,omitempty"`
}

// inspectDeadLetters shows up to ?count= (default 100) messages with their
// x-death history; they are taken as basic.get would and put back.
func (a *API) inspectDeadLetters(q *request, v *vhost.VHost, qu queue.Interface) {
	n := 100
	if c := q.r.URL.Query().Get("count"); c != "" {
		x, err := strconv.Atoi(c)
		if err != nil || x < 1 {
			badRequest(q.w, "count must be a positive integer")
			return
		}
		n = min(x, 10000)
	}
	ds, left := take(qu, n)
	out := make([]deadLetterJSON, len(ds))
	for i, d := range ds {
		m, p := messageOf(d, left[i], "auto", 0)
		out[i] = deadLetterJSON{messageJSON: m, XDeath: deaths(p)}
		out[i].FirstDeathReason, _ = p.Headers["x-first-death-reason"].(string)
		out[i].FirstDeathQueue, _ = p.Headers["x-first-death-queue"].(string)
		out[i].FirstDeathExchange, _ = p.Headers["x-first-death-exchange"].(string)
	}
	qu.Requeue(ds)
	writeJSON(q.w, 200, out)
}

// ReplayResult is the answer of a dead-letter replay.
type ReplayResult struct {
	Replayed int `json:"replayed"`
	// Skipped messages had no x-death and stay in the queue.
	Skipped   int    `json:"skipped"`
	Remaining int    `json:"remaining"`
	Error     string `json:"error,omitempty"`
}

// replayDeadLetters moves dead letters back to where they died (x-death's
// most recent entry): to its queue through the default exchange ("to":
// "original"), or through the named exchange with the original routing
// keys. Each is published, and on disk if persistent, before its DLQ copy
// is acked, so an interrupted replay duplicates at worst and never loses.
func (a *API) replayDeadLetters(q *request, v *vhost.VHost, qu queue.Interface) {
	var body struct {
		To    string      `json:"to"`
		Limit json.Number `json:"limit"`
	}
	if !readBody(q, &body) {
		return
	}
	limit := int64(-1)
	if body.Limit != "" {
		l, err := body.Limit.Int64()
		if err != nil || l < 0 {
			badRequest(q.w, "limit must be a non-negative integer")
			return
		}
		limit = l
	}
	if body.To == "" {
		body.To = "original"
	}
	if body.To != "original" {
		if _, err := v.Exchange(exchangeName(body.To)); err != nil {
			brokerError(q.w, err)
			return
		}
	}
	res, err := replay(v, qu, body.To, limit)
	if err != nil {
		res.Error = err.Error()
		writeJSON(q.w, http.StatusConflict, res)
		return
	}
	writeJSON(q.w, 200, res)
}

func replay(v *vhost.VHost, qu queue.Interface, to string, limit int64) (res ReplayResult, err error) {
	var skipped []queue.Delivery
	defer func() {
		qu.Requeue(skipped)
		res.Skipped = len(skipped)
		res.Remaining = qu.Stats().Ready
	}()
	for limit < 0 || int64(res.Replayed) < limit {
		d, _, ok := qu.Get(false)
		if !ok {
			break
		}
		var p wire.Properties
		_ = p.Decode(d.Message.Properties)
		ds := deaths(&p)
		if len(ds) == 0 {
			skipped = append(skipped, d)
			continue
		}
		last := ds[0]
		m := d.Message
		out := &queue.Message{Properties: m.Properties, Body: m.Body, Persistent: m.Persistent, Priority: m.Priority}
		pub := &vhost.Publishing{Message: out, Headers: p.Headers}
		if to == "original" {
			pub.Exchange, pub.RoutingKey = "", last.Queue
		} else {
			pub.Exchange = exchangeName(to)
			keys := last.RoutingKeys
			if len(keys) == 0 {
				keys = []string{""}
			}
			pub.RoutingKey, pub.CC = keys[0], keys[1:]
		}
		out.Exchange, out.RoutingKey = pub.Exchange, pub.RoutingKey
		var r vhost.Routed
		r, err = publishSync(v, pub)
		if err == nil && r.Queues == 0 {
			err = fmt.Errorf("message was not routed (exchange %q, routing key %q)", pub.Exchange, pub.RoutingKey)
		}
		if err != nil {
			skipped = append(skipped, d) // back where it was; the replay stops
			return res, err
		}
		qu.Ack([]queue.Delivery{d})
		res.Replayed++
	}
	return res, nil
}
