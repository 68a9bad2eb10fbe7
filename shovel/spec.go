package shovel

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// Ack modes, as rabbitmq_shovel names them.
const (
	OnConfirm = "on-confirm" // ack the source once the destination confirms
	OnPublish = "on-publish" // ack the source once the message is sent on
	NoAck     = "no-ack"     // consume without acks
)

// Delete-after values other than a count.
const (
	deleteNever       = -1
	deleteQueueLength = -2
)

// Spec is a dynamic shovel's definition: the value of a "shovel" runtime
// parameter, parsed and checked.
type Spec struct {
	SrcURIs        []string
	SrcQueue       string
	SrcExchange    string
	SrcExchangeKey string
	srcIsExchange  bool

	DestURIs        []string
	DestQueue       string
	DestExchange    string
	DestExchangeKey string
	destExchangeSet bool // dest-exchange given (even "": the default exchange)
	destKeySet      bool // dest-exchange-key given: replaces the routing key

	SrcQueueArgs    amqp091.Table // src-queue-args: for declaring a missing source queue
	SrcConsumerArgs amqp091.Table // src-consumer-args: basic.consume's arguments
	DestQueueArgs   amqp091.Table // dest-queue-args
	// PublishProperties (dest-publish-properties) replace the messages'
	// properties of the same names (delivery_mode, content_type, ...).
	PublishProperties map[string]any

	AckMode            string
	DeleteAfter        int // a count, deleteNever or deleteQueueLength
	Prefetch           int
	AddForwardHeaders  bool
	AddTimestampHeader bool
	ReconnectDelay     time.Duration
}

// DefaultPrefetch and DefaultReconnectDelay are rabbitmq_shovel's defaults.
const (
	DefaultPrefetch       = 1000
	DefaultReconnectDelay = 5 * time.Second
)

// ValidationError is a refused shovel definition; Error is RabbitMQ's text
// ("Validation failed\n\n" and one line per problem).
type ValidationError struct{ Problems []string }

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("Validation failed\n\n")
	for _, p := range e.Problems {
		b.WriteString(p)
		b.WriteByte('\n')
	}
	return b.String()
}

// keys are the amqp091 shovel keys rabbitmq_shovel 3.10 accepts.
var keys = map[string]bool{
	"src-uri": true, "src-queue": true, "src-exchange": true, "src-exchange-key": true,
	"src-prefetch-count": true, "src-delete-after": true, "src-protocol": true,
	"dest-uri": true, "dest-queue": true, "dest-exchange": true, "dest-exchange-key": true,
	"dest-add-forward-headers": true, "dest-add-timestamp-header": true, "dest-protocol": true,
	"ack-mode": true, "reconnect-delay": true,
	"src-queue-args": true, "src-consumer-args": true, "dest-queue-args": true, "dest-publish-properties": true,
	// Older spellings RabbitMQ still reads.
	"add-forward-headers": true, "delete-after": true, "prefetch-count": true,
}

// Parse checks a shovel parameter's value (a JSON object) named name, as
// rabbitmq_shovel does, and returns its Spec or a *ValidationError.
func Parse(name string, raw json.RawMessage) (*Spec, error) {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, &ValidationError{Problems: []string{fmt.Sprintf("%s not a list", erlTerm(string(raw)))}}
	}
	var first, problems []string
	s := &Spec{AckMode: OnConfirm, DeleteAfter: deleteNever, Prefetch: DefaultPrefetch, ReconnectDelay: DefaultReconnectDelay}

	for _, side := range []string{"src", "dest"} {
		if p, ok := m[side+"-protocol"]; ok && p != "amqp091" {
			// RabbitMQ then validates the keys of AMQP 1.0 shovels, which
			// Warren does not run.
			return nil, &ValidationError{Problems: []string{fmt.Sprintf("%s-protocol should be %s, actually was %s", side, `<<"amqp091">>`, erlTerm(p))}}
		}
	}
	var unknown []string
	for k := range m {
		if !keys[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		terms := make([]string, len(unknown))
		for i, k := range unknown {
			terms[i] = fmt.Sprintf("{%s,%s}", erlTerm(k), erlTerm(m[k]))
		}
		first = append(first, fmt.Sprintf("Unrecognised terms [%s] in %s", strings.Join(terms, ","), name))
	}

	_, hasSrcX := m["src-exchange"]
	_, hasSrcQ := m["src-queue"]
	switch {
	case hasSrcX && hasSrcQ:
		first = append(first, "Cannot specify 'src-exchange' and 'src-queue'")
	case !hasSrcX && !hasSrcQ:
		first = append(first, "Must specify 'src-exchange' or 'src-queue'")
	}
	_, hasDestX := m["dest-exchange"]
	_, hasDestQ := m["dest-queue"]
	if hasDestX && hasDestQ {
		first = append(first, "Cannot specify 'dest-exchange' and 'dest-queue'")
	}

	str := func(k string, dst *string) bool {
		v, ok := m[k]
		if !ok {
			return false
		}
		sv, isStr := v.(string)
		if !isStr {
			problems = append(problems, fmt.Sprintf("%s should be binary, actually was %s", k, erlTerm(v)))
			return false
		}
		*dst = sv
		return true
	}
	boolean := func(k string, dst *bool) {
		v, ok := m[k]
		if !ok {
			return
		}
		bv, isBool := v.(bool)
		if !isBool {
			problems = append(problems, fmt.Sprintf("%s should be boolean, actually was %s", k, erlTerm(v)))
			return
		}
		*dst = bv
	}
	number := func(k string) (float64, bool) {
		v, ok := m[k]
		if !ok {
			return 0, false
		}
		n, isNum := v.(json.Number)
		f, err := n.Float64()
		if !isNum || err != nil {
			problems = append(problems, fmt.Sprintf("%s should be a number, actually was %s", k, erlTerm(v)))
			return 0, false
		}
		return f, true
	}
	uris := func(k string) []string {
		v, ok := m[k]
		if !ok {
			problems = append(problems, fmt.Sprintf("Key %q not found in %s", k, name))
			return nil
		}
		var list []any
		switch t := v.(type) {
		case string:
			list = []any{t}
		case []any:
			list = t
		default:
			problems = append(problems, fmt.Sprintf("%s should be list, actually was %s", k, erlTerm(v)))
			return nil
		}
		var out []string
		for _, e := range list {
			u, isStr := e.(string)
			if !isStr {
				problems = append(problems, fmt.Sprintf("%s should be list, actually was %s", k, erlTerm(e)))
				return nil
			}
			if err := checkURI(u); err != nil {
				problems = append(problems, err.Error())
				return nil
			}
			out = append(out, u)
		}
		return out
	}

	s.SrcURIs = uris("src-uri")
	s.srcIsExchange = str("src-exchange", &s.SrcExchange)
	str("src-queue", &s.SrcQueue)
	s.SrcExchangeKey = "#"
	str("src-exchange-key", &s.SrcExchangeKey)
	for _, k := range []string{"src-prefetch-count", "prefetch-count"} {
		if f, ok := number(k); ok {
			s.Prefetch = int(max(0, min(f, math.MaxUint16)))
		}
	}
	for _, k := range []string{"src-delete-after", "delete-after"} {
		v, ok := m[k]
		if !ok {
			continue
		}
		n, isNum := v.(json.Number)
		i, err := n.Int64()
		switch {
		case v == "never":
			s.DeleteAfter = deleteNever
		case v == "queue-length":
			s.DeleteAfter = deleteQueueLength
		case isNum && err == nil && i >= 0:
			s.DeleteAfter = int(min(i, math.MaxInt32))
		default:
			problems = append(problems, fmt.Sprintf(`%s should be a number greater than or equal to 0, "never" or "queue-length", actually was %s`, k, erlTerm(v)))
		}
	}

	s.DestURIs = uris("dest-uri")
	s.destExchangeSet = str("dest-exchange", &s.DestExchange)
	str("dest-queue", &s.DestQueue)
	s.destKeySet = str("dest-exchange-key", &s.DestExchangeKey)
	boolean("dest-add-forward-headers", &s.AddForwardHeaders)
	boolean("add-forward-headers", &s.AddForwardHeaders)
	boolean("dest-add-timestamp-header", &s.AddTimestampHeader)

	object := func(k string) map[string]any {
		v, ok := m[k]
		if !ok {
			return nil
		}
		o, isObj := v.(map[string]any)
		if !isObj {
			problems = append(problems, fmt.Sprintf("%s should be a map, actually was %s", k, erlTerm(v)))
		}
		return o
	}
	s.SrcQueueArgs = table(object("src-queue-args"))
	s.SrcConsumerArgs = table(object("src-consumer-args"))
	s.DestQueueArgs = table(object("dest-queue-args"))
	s.PublishProperties = object("dest-publish-properties")

	if v, ok := m["ack-mode"]; ok {
		switch v {
		case OnConfirm, OnPublish, NoAck:
			s.AckMode = v.(string)
		default:
			problems = append(problems, fmt.Sprintf(`ack-mode should be one of [<<"no-ack">>,<<"on-publish">>,<<"on-confirm">>], actually was %s`, erlTerm(v)))
		}
	}
	if f, ok := number("reconnect-delay"); ok {
		s.ReconnectDelay = time.Duration(max(0, f) * float64(time.Second))
	}

	sort.Strings(problems)
	if all := append(first, problems...); len(all) > 0 {
		return nil, &ValidationError{Problems: all}
	}
	return s, nil
}

// table turns JSON arguments into an AMQP table: integers as long,
// other numbers as double, objects as tables.
func table(o map[string]any) amqp091.Table {
	if o == nil {
		return nil
	}
	t := make(amqp091.Table, len(o))
	for k, v := range o {
		t[k] = tableValue(v)
	}
	return t
}

func tableValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		return table(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = tableValue(e)
		}
		return out
	}
	return v
}

// checkURI refuses what amqp_uri:parse refuses, in its words.
func checkURI(u string) error {
	bad := func(reason string) error { return fmt.Errorf("%q not a valid URI: {%s,%q}", u, reason, u) }
	p, err := url.Parse(u)
	if err != nil {
		return bad("malformed_uri")
	}
	if p.Scheme != "amqp" && p.Scheme != "amqps" {
		return bad(fmt.Sprintf("{unexpected_uri_scheme,%q}", p.Scheme))
	}
	if port := p.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return bad(fmt.Sprintf("{port_out_of_range,%s}", port))
		}
	}
	if p.Host != "" {
		if _, err := amqp091.ParseURI(u); err != nil {
			return bad("malformed_uri")
		}
	}
	return nil
}

// erlTerm writes a JSON value as RabbitMQ's messages print it (an Erlang
// term: strings are binaries).
func erlTerm(v any) string {
	switch t := v.(type) {
	case string:
		return fmt.Sprintf("<<%q>>", t)
	case json.Number:
		return t.String()
	case bool:
		return strconv.FormatBool(t)
	case nil:
		return "null"
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = erlTerm(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case map[string]any:
		ks := make([]string, 0, len(t))
		for k := range t {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		parts := make([]string, len(ks))
		for i, k := range ks {
			parts[i] = fmt.Sprintf("{%s,%s}", erlTerm(k), erlTerm(t[k]))
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	return fmt.Sprint(v)
}

// endpoint is one URI made ready to dial: a host, or the local node.
type endpoint struct {
	uri   string // as given, for status and x-shovelled
	local bool   // "amqp://" without a host: this broker, in process
	vhost string
	cfg   amqp091.URI
}

func parseEndpoint(u string) (endpoint, error) {
	p, err := url.Parse(u)
	if err != nil {
		return endpoint{}, err
	}
	if p.Host == "" {
		// amqp_uri's direct form: the local node, vhost from the path
		// ("/" when there is none).
		vh := "/"
		if path := strings.TrimPrefix(p.Path, "/"); path != "" {
			vh = path
		}
		return endpoint{uri: u, local: true, vhost: vh}, nil
	}
	c, err := amqp091.ParseURI(u)
	if err != nil {
		return endpoint{}, err
	}
	return endpoint{uri: u, vhost: c.Vhost, cfg: c}, nil
}

// redact drops the credentials from a URI, as RabbitMQ's status and
// x-shovelled headers do.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	p.User = nil
	return p.String()
}

// StatusFields are the source and destination fields GET /api/shovels
// shows of a running shovel (src_queue, dest_exchange, ...).
func (s *Spec) StatusFields() map[string]string {
	f := map[string]string{}
	if s.srcIsExchange {
		f["src_exchange"], f["src_exchange_key"] = s.SrcExchange, s.SrcExchangeKey
	} else {
		f["src_queue"] = s.SrcQueue
	}
	if s.DestQueue != "" {
		f["dest_queue"] = s.DestQueue
	} else {
		if s.destExchangeSet {
			f["dest_exchange"] = s.DestExchange
		}
		if s.destKeySet {
			f["dest_exchange_key"] = s.DestExchangeKey
		}
	}
	return f
}
