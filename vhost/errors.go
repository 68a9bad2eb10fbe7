package vhost

import "fmt"

// Kind classifies a failed operation the way AMQP reply codes do, without
// the broker core knowing the numbers; the amqp package maps each kind to
// its code in one place.
type Kind uint8

// The kinds of failure a virtual host reports.
const (
	NotFound Kind = iota + 1
	AccessRefused
	ResourceLocked
	PreconditionFailed
	CommandInvalid
	NotAllowed
	InternalError
	NotImplemented
)

// Error is a failed operation with RabbitMQ's text (without the
// "NOT_FOUND - " prefix, which the protocol layer adds).
type Error struct {
	Kind Kind
	Text string
}

func (e *Error) Error() string { return e.Text }

func errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Text: fmt.Sprintf(format, args...)}
}
