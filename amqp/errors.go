package amqp

import (
	"errors"
	"fmt"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/vhost"
)

// protoError is an AMQP exception. Whether it closes the channel (soft) or
// the connection (hard) follows from its code, as the spec defines.
type protoError struct {
	code     uint16
	text     string // without the "NAME - " prefix
	classID  uint16
	methodID uint16
}

func (e *protoError) Error() string { return e.replyText() }

// replyText is the reply-text RabbitMQ sends: "NOT_FOUND - no queue 'q' in vhost '/'".
func (e *protoError) replyText() string {
	return wire.ReplyText(e.code) + " - " + e.text
}

func (e *protoError) hard() bool { return wire.IsHardError(e.code) }

func newError(code uint16, format string, args ...any) *protoError {
	return &protoError{code: code, text: fmt.Sprintf(format, args...)}
}

// kindCodes is the one place broker-core failures become reply codes.
var kindCodes = map[vhost.Kind]uint16{
	vhost.NotFound:           wire.NotFound,
	vhost.AccessRefused:      wire.AccessRefused,
	vhost.ResourceLocked:     wire.ResourceLocked,
	vhost.PreconditionFailed: wire.PreconditionFailed,
	vhost.CommandInvalid:     wire.CommandInvalid,
	vhost.NotAllowed:         wire.NotAllowed,
	vhost.InternalError:      wire.InternalError,
	vhost.NotImplemented:     wire.NotImplemented,
}

// asProtoError turns any error from the broker core into an AMQP exception.
func asProtoError(err error) *protoError {
	var pe *protoError
	if errors.As(err, &pe) {
		return pe
	}
	var ve *vhost.Error
	if errors.As(err, &ve) {
		if code, ok := kindCodes[ve.Kind]; ok {
			return &protoError{code: code, text: ve.Text}
		}
	}
	if errors.Is(err, queue.ErrDeleted) {
		return newError(wire.NotFound, "queue deleted")
	}
	return newError(wire.InternalError, "%v", err)
}
