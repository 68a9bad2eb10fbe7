package queue

import (
	"time"
)

// Overflow is what a full queue does with a new message (x-overflow).
type Overflow uint8

// The x-overflow behaviours.
const (
	// DropHead drops (dead-letters) the oldest ready messages.
	DropHead Overflow = iota
	// RejectPublish refuses the new message; confirms get basic.nack.
	RejectPublish
	// RejectPublishDLX refuses and dead-letters the new message.
	RejectPublishDLX
)

// MaxExpiry is RabbitMQ's largest TTL or expiry in milliseconds (ten years).
const MaxExpiry = 315360000000

// MaxPriority is the highest x-max-priority, as in RabbitMQ.
const MaxPriority = 255

// Config is a queue's behaviour, read from its x- arguments.
type Config struct {
	// Type is x-queue-type.
	Type Type
	// MaxPriority > 0 makes a priority queue with levels 0..MaxPriority.
	MaxPriority uint8
	// Deduplicate (x-message-deduplication, rabbitmq-message-deduplication's
	// queue argument) refuses a message whose x-deduplication-header value
	// a message in the queue already carries.
	Deduplicate bool
	// MessageTTL is x-message-ttl; negative means none.
	MessageTTL time.Duration
	// Expires is x-expires: delete the queue after it is unused this long; 0 means never.
	Expires time.Duration
	// MaxLength and MaxLengthBytes bound the ready messages; negative means none.
	MaxLength      int64
	MaxLengthBytes int64
	Overflow       Overflow
	// DeadLetterExchange is x-dead-letter-exchange; HasDeadLetter says it is set
	// (the default exchange "" is a valid target).
	DeadLetterExchange string
	HasDeadLetter      bool
	// DeadLetterRoutingKey replaces the routing key when HasDeadLetterKey.
	DeadLetterRoutingKey string
	HasDeadLetterKey     bool
	// DeliveryLimit is x-delivery-limit: a message returned more often is
	// dead-lettered with reason delivery_limit; negative means none.
	DeliveryLimit int64
	// SingleActiveConsumer delivers to one consumer at a time.
	SingleActiveConsumer bool
	// ConsumerTimeout is x-consumer-timeout; 0 means the server default.
	ConsumerTimeout time.Duration
}

// ArgProblem says what is wrong with an argument, in the words of RabbitMQ's
// error terms, which the protocol layer prints.
type ArgProblem uint8

// The argument problems RabbitMQ distinguishes.
const (
	UnacceptableType ArgProblem = iota + 1
	NotInteger
	ValueNegative
	ValueZero
	ValueTooLarge
	MaxValueExceeded
	InvalidOverflow
	InvalidQueueMode
	InvalidQueueType
	RoutingKeyButNoDLX
	InvalidDLXStrategy
	InvalidLocator
)

// ArgError is an invalid queue argument.
type ArgError struct {
	Key     string
	Problem ArgProblem
	Value   any
}

func (e *ArgError) Error() string { return "invalid arg '" + e.Key + "'" }

// ParseArgs validates queue arguments as RabbitMQ's queue.declare does and
// returns the resulting configuration. Unknown arguments are ignored, as in
// RabbitMQ.
func ParseArgs(args map[string]any) (Config, error) {
	c := Config{MessageTTL: -1, MaxLength: -1, MaxLengthBytes: -1, DeliveryLimit: -1}
	for _, key := range argOrder {
		v, ok := args[key]
		if !ok {
			continue
		}
		var err *ArgError
		switch key {
		case "x-expires":
			var n int64
			if n, err = expiryArg(key, v); err == nil && n == 0 {
				err = &ArgError{key, ValueZero, n}
			}
			c.Expires = time.Duration(n) * time.Millisecond
		case "x-message-ttl":
			var n int64
			n, err = expiryArg(key, v)
			c.MessageTTL = time.Duration(n) * time.Millisecond
		case "x-max-length":
			c.MaxLength, err = nonNegArg(key, v)
		case "x-max-length-bytes":
			c.MaxLengthBytes, err = nonNegArg(key, v)
		case "x-max-in-memory-length", "x-max-in-memory-bytes":
			_, err = nonNegArg(key, v)
		case "x-delivery-limit":
			// RabbitMQ 3.10 does not check it at declare: a value that is
			// not a non-negative integer is no limit.
			if n, ok := IntArg(v); ok && n >= 0 {
				c.DeliveryLimit = n
			}
		case "x-dead-letter-strategy":
			var s string
			if s, err = stringArg(key, v); err == nil && s != "at-most-once" && s != "at-least-once" {
				err = &ArgError{key, InvalidDLXStrategy, v}
			}
		case "x-quorum-initial-group-size":
			var n int64
			if n, err = nonNegArg(key, v); err == nil && n == 0 {
				err = &ArgError{key, ValueZero, n}
			}
		case "x-queue-leader-locator":
			var s string
			if s, err = stringArg(key, v); err == nil && s != "client-local" && s != "balanced" {
				err = &ArgError{key, InvalidLocator, v}
			}
		case "x-consumer-timeout":
			var n int64
			n, err = nonNegArg(key, v)
			c.ConsumerTimeout = time.Duration(n) * time.Millisecond
		case "x-max-priority":
			var n int64
			if n, err = nonNegArg(key, v); err == nil && n > MaxPriority {
				err = &ArgError{key, MaxValueExceeded, n}
			}
			c.MaxPriority = uint8(n)
		case "x-dead-letter-exchange":
			c.DeadLetterExchange, err = stringArg(key, v)
			c.HasDeadLetter = err == nil
		case "x-dead-letter-routing-key":
			c.DeadLetterRoutingKey, err = stringArg(key, v)
			c.HasDeadLetterKey = err == nil
			if _, ok := args["x-dead-letter-exchange"]; err == nil && !ok {
				err = &ArgError{key, RoutingKeyButNoDLX, v}
			}
		case "x-overflow":
			var s string
			if s, err = stringArg(key, v); err == nil {
				switch s {
				case "drop-head":
					c.Overflow = DropHead
				case "reject-publish":
					c.Overflow = RejectPublish
				case "reject-publish-dlx":
					c.Overflow = RejectPublishDLX
				default:
					err = &ArgError{key, InvalidOverflow, v}
				}
			}
		case "x-queue-mode":
			var s string
			if s, err = stringArg(key, v); err == nil && s != "default" && s != "lazy" {
				err = &ArgError{key, InvalidQueueMode, v}
			}
		case "x-queue-type":
			var s string
			if s, err = stringArg(key, v); err == nil {
				switch s {
				case "classic":
				case "quorum":
					c.Type = TypeQuorum
				default:
					err = &ArgError{key, InvalidQueueType, v}
				}
			}
		case "x-message-deduplication":
			// The plugin deduplicates when the argument is true and ignores
			// it otherwise.
			b, _ := v.(bool)
			c.Deduplicate = b
		case "x-single-active-consumer":
			b, ok := v.(bool)
			if !ok {
				err = &ArgError{key, UnacceptableType, v}
			}
			c.SingleActiveConsumer = b
		}
		if err != nil {
			return Config{}, err
		}
	}
	return c, nil
}

// argOrder is the order RabbitMQ checks arguments in, so the same one is
// reported when several are wrong.
var argOrder = []string{
	"x-expires", "x-message-ttl", "x-dead-letter-exchange", "x-dead-letter-routing-key", "x-dead-letter-strategy",
	"x-max-length", "x-max-length-bytes", "x-max-in-memory-length", "x-max-in-memory-bytes",
	"x-max-priority", "x-overflow", "x-queue-mode", "x-single-active-consumer", "x-queue-type",
	"x-quorum-initial-group-size", "x-queue-leader-locator",
	"x-delivery-limit", "x-consumer-timeout", "x-message-deduplication",
}

// IntArg reads an AMQP integer of any width, as RabbitMQ's integer argument
// types allow.
func IntArg(v any) (int64, bool) {
	switch n := v.(type) {
	case int8:
		return int64(n), true
	case uint8:
		return int64(n), true
	case int16:
		return int64(n), true
	case uint16:
		return int64(n), true
	case int32:
		return int64(n), true
	case uint32:
		return int64(n), true
	case int64:
		return n, true
	case int:
		return int64(n), true
	}
	return 0, false
}

func nonNegArg(key string, v any) (int64, *ArgError) {
	n, ok := IntArg(v)
	switch {
	case !ok:
		return 0, &ArgError{key, NotInteger, v}
	case n < 0:
		return 0, &ArgError{key, ValueNegative, n}
	}
	return n, nil
}

func expiryArg(key string, v any) (int64, *ArgError) {
	n, err := nonNegArg(key, v)
	if err == nil && n > MaxExpiry {
		err = &ArgError{key, ValueTooLarge, n}
	}
	return n, err
}

func stringArg(key string, v any) (string, *ArgError) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	return "", &ArgError{key, UnacceptableType, v}
}
