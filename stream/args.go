// Package stream holds streams (`x-queue-type: stream`) as RabbitMQ 3.10.8
// serves them over AMQP 0-9-1: the declare rules, the x-stream-offset
// specifications, and the Stream itself, whose messages live in a
// storage/streamlog and whose consumers each read it from their own offset,
// paced by their prefetch. As an extension, RabbitMQ 3.13's filtering
// (x-stream-filter-value on publish, x-stream-filter and
// x-stream-match-unfiltered on consume) is offered; Warren filters exactly,
// where 3.13's Bloom filter lets some other values through.
package stream

import (
	"fmt"
	"strconv"
	"time"

	"github.com/warrenmq/warren/queue"
)

// Reply codes the errors carry (RabbitMQ's).
const (
	PreconditionFailed = 406
	NotImplemented     = 540
	InternalError      = 541
)

// Error is a refusal with RabbitMQ's reply code and text. Codes 540 and 541
// close the connection, 406 the channel.
type Error struct {
	Code int
	Text string
}

func (e *Error) Error() string { return e.Text }

func errorf(code int, format string, a ...any) *Error {
	return &Error{Code: code, Text: fmt.Sprintf(format, a...)}
}

// Config is a stream's declared configuration.
type Config struct {
	MaxBytes           int64         // x-max-length-bytes, 0: no limit
	MaxAge             time.Duration // x-max-age, 0: no limit
	MaxSegmentBytes    int64         // x-stream-max-segment-size-bytes, 0: the default
	InitialClusterSize int64         // x-initial-cluster-size (one node: recorded only)
}

// refusedArgs are the arguments RabbitMQ 3.10.8 refuses on a stream (it
// names the first in the client's table when several are given).
var refusedArgs = []string{
	"x-expires", "x-message-ttl", "x-dead-letter-exchange", "x-dead-letter-routing-key",
	"x-max-length", "x-max-in-memory-length", "x-max-in-memory-bytes", "x-max-priority",
	"x-overflow", "x-queue-mode", "x-single-active-consumer", "x-queue-master-locator",
	"x-delivery-limit", "x-quorum-initial-group-size", "x-queue-version",
}

// ParseDeclare checks a stream's queue.declare as RabbitMQ 3.10.8 does and
// returns its configuration.
func ParseDeclare(vhost, name string, durable, exclusive, autoDelete bool, args map[string]any) (Config, error) {
	var c Config
	if name == "" {
		return c, errorf(PreconditionFailed, "Cannot declare a server-named queue for type rabbit_stream_queue")
	}
	what := fmt.Sprintf("queue '%s' in vhost '%s'", name, vhost)
	intArg := func(k string, zeroOK bool) (int64, error) {
		v := args[k]
		n, ok := queue.IntArg(v)
		switch {
		case !ok:
			return 0, errorf(PreconditionFailed, "invalid arg '%s' for %s: \"expected integer, got %s\"", k, what, typeWord(v))
		case n < 0:
			return 0, errorf(PreconditionFailed, "invalid arg '%s' for %s: {value_negative,%d}", k, what, n)
		case n == 0 && !zeroOK:
			return 0, errorf(PreconditionFailed, "invalid arg '%s' for %s: {value_zero,0}", k, what)
		}
		return n, nil
	}
	// The values of the arguments a stream takes are checked first.
	var err error
	if _, ok := args["x-max-length-bytes"]; ok {
		if c.MaxBytes, err = intArg("x-max-length-bytes", true); err != nil {
			return c, err
		}
	}
	if v, ok := args["x-max-age"]; ok {
		s, isStr := v.(string)
		if !isStr {
			return c, errorf(PreconditionFailed, "invalid arg 'x-max-age' for %s: {unacceptable_type,%s}", what, typeAtom(v))
		}
		d, ok := ParseAge(s)
		if !ok {
			// RabbitMQ 3.10.8 crashes on an unparsable age.
			return c, errorf(InternalError, "INTERNAL_ERROR")
		}
		if d == 0 {
			return c, errorf(PreconditionFailed, "invalid arg 'x-max-age' for %s: invalid_max_age", what)
		}
		c.MaxAge = d
	}
	if _, ok := args["x-stream-max-segment-size-bytes"]; ok {
		if c.MaxSegmentBytes, err = intArg("x-stream-max-segment-size-bytes", true); err != nil {
			return c, err
		}
	}
	if _, ok := args["x-initial-cluster-size"]; ok {
		if c.InitialClusterSize, err = intArg("x-initial-cluster-size", false); err != nil {
			return c, err
		}
	}
	// Then the arguments the type refuses, then the properties, in
	// RabbitMQ 3.10.8's order.
	for _, k := range refusedArgs {
		if _, ok := args[k]; ok {
			return c, errorf(PreconditionFailed, "invalid arg '%s' for %s of queue type rabbit_stream_queue", k, what)
		}
	}
	switch {
	case autoDelete:
		return c, errorf(PreconditionFailed, "invalid property 'auto-delete' for %s", what)
	case exclusive:
		return c, errorf(PreconditionFailed, "invalid property 'exclusive-owner' for %s", what)
	case !durable:
		return c, errorf(PreconditionFailed, "invalid property 'non-durable' for %s", what)
	}
	return c, nil
}

// CheckedArgs are the arguments compared on redeclare of a stream.
var CheckedArgs = []string{"x-queue-type", "x-max-length-bytes", "x-max-age", "x-stream-max-segment-size-bytes", "x-initial-cluster-size"}

// ParseAge reads x-max-age's units: Y, M, D, h, m, s after a whole number.
func ParseAge(s string) (time.Duration, bool) {
	if len(s) < 2 {
		return 0, false
	}
	n, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 'Y':
		unit = 365 * 24 * time.Hour
	case 'M':
		unit = 30 * 24 * time.Hour
	case 'D':
		unit = 24 * time.Hour
	case 'h':
		unit = time.Hour
	case 'm':
		unit = time.Minute
	case 's':
		unit = time.Second
	default:
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// typeWord names a value's AMQP type as RabbitMQ's integer check does.
func typeWord(v any) string {
	switch v.(type) {
	case string, []byte:
		return "longstr"
	case bool:
		return "bool"
	case float32, float64:
		return "double"
	case map[string]any:
		return "table"
	case []any:
		return "array"
	case time.Time:
		return "timestamp"
	case nil:
		return "void"
	}
	return "long"
}

// typeAtom names an AMQP type as RabbitMQ's unacceptable_type error does.
func typeAtom(v any) string {
	if _, ok := queue.IntArg(v); ok {
		return "long"
	}
	return typeWord(v)
}
