package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Method is an AMQP method: one generated struct per method of the spec.
type Method interface {
	ClassID() uint16
	MethodID() uint16
	// Name is the spec name, e.g. "basic.publish".
	Name() string
	// Synchronous reports whether the peer answers with a reply method (xxx-ok).
	Synchronous() bool
	// HasContent reports whether a content header and body frames follow.
	HasContent() bool
	// Append appends the method frame payload: class id, method id, arguments.
	Append(b []byte) []byte
	// Decode parses the arguments (the bytes after the 4-byte class and method
	// ids). It returns an error wrapping ErrMalformed on truncated or trailing input.
	Decode(args []byte) error
}

// ErrMalformed is wrapped by every decode error caused by bad input (truncated
// data, bad lengths, unknown field types), so the connection can answer
// FRAME_ERROR / SYNTAX_ERROR.
var ErrMalformed = errors.New("amqp: malformed")

// UnknownMethodError reports a method frame whose class/method ids are not in the spec.
type UnknownMethodError struct {
	ClassID, MethodID uint16
}

// Error names the ids; the connection answers it with COMMAND_INVALID or NOT_IMPLEMENTED.
func (e *UnknownMethodError) Error() string {
	return fmt.Sprintf("amqp: unknown method (%d, %d)", e.ClassID, e.MethodID)
}

// Preallocated so that failing decodes on hot paths do not allocate either.
var (
	errShort       = fmt.Errorf("%w: truncated", ErrMalformed)
	errTrailing    = fmt.Errorf("%w: trailing bytes", ErrMalformed)
	errShortMethod = fmt.Errorf("%w: method payload shorter than 4 bytes", ErrMalformed)
)

// methodError names the method in a decode error.
func methodError(m Method, err error) error {
	return fmt.Errorf("%s: %w", m.Name(), err)
}

// appendShortstr appends a short string. Strings over 255 bytes are truncated
// so the frame stays well-formed; callers that care validate lengths first
// (inbound shortstrs can never exceed 255).
func appendShortstr(b []byte, s string) []byte {
	if len(s) > 255 {
		s = s[:255]
	}
	b = append(b, byte(len(s)))
	return append(b, s...)
}

func appendLongstr(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// reader is a decoding cursor with a sticky error, so generated code can read
// every argument in sequence and check once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

func (r *reader) octet() uint8 {
	if len(r.b) < 1 {
		r.fail(errShort)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) short() uint16 {
	if len(r.b) < 2 {
		r.fail(errShort)
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *reader) long() uint32 {
	if len(r.b) < 4 {
		r.fail(errShort)
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) longlong() uint64 {
	if len(r.b) < 8 {
		r.fail(errShort)
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

// bytes returns the next n bytes, aliasing the input.
func (r *reader) bytes(n uint64) []byte {
	if uint64(len(r.b)) < n {
		r.fail(errShort)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// shortstrReuse copies a short string out (frames are read into reused
// buffers), or returns prev, without allocating, when the bytes are the same.
func (r *reader) shortstrReuse(prev string) string {
	n := r.octet()
	b := r.bytes(uint64(n))
	if string(b) == prev {
		return prev
	}
	return string(b)
}

func (r *reader) longstr() string {
	n := r.long()
	return string(r.bytes(uint64(n)))
}

func (r *reader) table() Table {
	if r.err != nil {
		return nil
	}
	t, n, err := DecodeTable(r.b)
	if err != nil {
		r.fail(err)
		return nil
	}
	r.b = r.b[n:]
	return t
}

// finish returns the first error, or errTrailing if input is left over:
// RabbitMQ rejects methods with extra bytes too.
func (r *reader) finish() error {
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return errTrailing
	}
	return nil
}
