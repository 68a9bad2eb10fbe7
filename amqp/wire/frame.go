package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// ProtocolHeader is what an AMQP 0-9-1 client sends first, and what a server
// sends back before closing when it gets anything else.
var ProtocolHeader = []byte("AMQP\x00\x00\x09\x01")

// Frame reading errors. The connection maps ErrFrameTooLarge, ErrBadFrameEnd and
// ErrBadFrameType to FRAME_ERROR (501).
var (
	ErrBadProtocolHeader = errors.New("amqp: bad protocol header")
	ErrFrameTooLarge     = errors.New("amqp: frame too large")
	ErrBadFrameEnd       = errors.New("amqp: bad frame end octet")
	ErrBadFrameType      = errors.New("amqp: bad frame type")
)

const (
	// frameOverhead is the 7-byte frame header plus the end octet.
	frameOverhead = 8
	// MaxFrameSize caps frames when frame_max is 0 (no negotiated limit).
	MaxFrameSize = 128 << 20
	// readChunk bounds how far the payload buffer grows ahead of the bytes
	// actually received, so a lying size field cannot make us allocate it all.
	readChunk = 1 << 20
)

// ReadProtocolHeader reads the 8-byte protocol header and returns
// ErrBadProtocolHeader if it is not ProtocolHeader; I/O errors pass through.
func ReadProtocolHeader(r io.Reader) error {
	var h [8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return err
	}
	if !bytes.Equal(h[:], ProtocolHeader) {
		return ErrBadProtocolHeader
	}
	return nil
}

// Frame is one AMQP frame. Payload excludes the header and end octet.
type Frame struct {
	Type    uint8
	Channel uint16
	Payload []byte
}

// FrameReader reads frames from a stream into one reused buffer.
// It is not safe for concurrent use.
type FrameReader struct {
	r        *bufio.Reader
	frameMax uint32
	buf      []byte // payloads too large for r's buffer
}

// NewFrameReader returns a FrameReader over r that rejects frames whose
// payload exceeds frameMax bytes. frame_max nominally counts the whole frame,
// but RabbitMQ allows one frame overhead of slack and clients depend on it;
// 0 means MaxFrameSize.
func NewFrameReader(r io.Reader, frameMax uint32) *FrameReader {
	return &FrameReader{r: bufio.NewReaderSize(r, 64<<10), frameMax: frameMax}
}

// SetFrameMax changes the limit, e.g. after connection.tune-ok.
func (r *FrameReader) SetFrameMax(n uint32) { r.frameMax = n }

// ReadFrame reads the next frame. Its Payload is valid until the next ReadFrame.
// The size is checked against frame_max from the header, before the payload is
// read. I/O errors pass through (io.EOF before a frame, io.ErrUnexpectedEOF inside one).
//
// The reader fills its buffer with whatever the socket has, in one read, and
// parses as many frames from it as it holds: a frame that fits in the buffer
// is returned in place, without copying it.
func (r *FrameReader) ReadFrame() (Frame, error) {
	hdr, err := r.r.Peek(7)
	if err != nil {
		if err == io.EOF && len(hdr) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	f := Frame{Type: hdr[0], Channel: binary.BigEndian.Uint16(hdr[1:])}
	size := uint64(binary.BigEndian.Uint32(hdr[3:]))
	limit := uint64(MaxFrameSize)
	if r.frameMax != 0 && r.frameMax < MaxFrameSize {
		limit = uint64(r.frameMax)
	}
	// RabbitMQ allows a fudge of one frame overhead (FRAME_SIZE_FUDGE), so
	// in effect the payload alone may be frame_max bytes; clients rely on it.
	if size > limit {
		return Frame{}, &BadFrameError{Err: ErrFrameTooLarge, Type: f.Type,
			Reason: fmt.Sprintf("{frame_too_large,%d,%d}", size, limit-frameOverhead)}
	}
	// Payload and end octet.
	n := int(size) + 1
	var buf []byte
	if 7+n <= r.r.Size() {
		whole, err := r.r.Peek(7 + n)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return Frame{}, err
		}
		// Discard does not refill the buffer, so whole stays valid until
		// the next ReadFrame.
		_, _ = r.r.Discard(7 + n)
		buf = whole[7:]
	} else {
		_, _ = r.r.Discard(7)
		if buf, err = r.readLarge(n); err != nil {
			return Frame{}, err
		}
	}
	if buf[n-1] != FrameEnd {
		return Frame{}, &BadFrameError{Err: ErrBadFrameEnd, Type: f.Type, Payload: bytes.Clone(buf[:n-1]),
			Reason: fmt.Sprintf("{invalid_frame_end_marker,%d}", buf[n-1])}
	}
	f.Payload = buf[: n-1 : n-1]
	switch f.Type {
	case FrameMethod, FrameHeader, FrameBody, FrameHeartbeat:
	default:
		// Like RabbitMQ, the whole frame is read before its type is judged,
		// so the error can show it.
		return Frame{}, &BadFrameError{Err: ErrBadFrameType, Type: f.Type, Payload: bytes.Clone(f.Payload), Reason: "unknown_frame"}
	}
	return f, nil
}

// HasFrame reports whether a whole frame was read from the socket and not yet
// returned: when false, the next ReadFrame reads the socket, and may wait.
func (r *FrameReader) HasFrame() bool {
	n := r.r.Buffered()
	if n < 7 {
		return false
	}
	hdr, _ := r.r.Peek(7)
	return n >= 7+int(binary.BigEndian.Uint32(hdr[3:]))+1
}

// readLarge reads the n bytes of a frame too large for the read buffer into
// r.buf, growing it as the bytes arrive.
func (r *FrameReader) readLarge(n int) ([]byte, error) {
	if cap(r.buf) > 4*readChunk && n < cap(r.buf)/4 {
		// Do not pin the memory of one huge message for the connection's lifetime.
		r.buf = nil
	}
	buf := r.buf[:0]
	for len(buf) < n {
		step := min(n-len(buf), readChunk)
		buf = slices.Grow(buf, step)
		if _, err := io.ReadFull(r.r, buf[len(buf):len(buf)+step]); err != nil {
			r.buf = buf[:0]
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		buf = buf[:len(buf)+step]
	}
	r.buf = buf[:0]
	return buf, nil
}

// BadFrameError is a frame that cannot be accepted. Its message is RabbitMQ's
// FRAME_ERROR text, e.g. "type 1, all octets = <<0,20>>: {invalid_frame_end_marker,0}".
type BadFrameError struct {
	Err     error // ErrFrameTooLarge, ErrBadFrameEnd or ErrBadFrameType
	Type    uint8
	Payload []byte
	Reason  string
}

func (e *BadFrameError) Error() string {
	return fmt.Sprintf("type %d, %s: %s", e.Type, Octets(e.Payload), e.Reason)
}

// Octets shows a frame's payload as RabbitMQ's frame error texts do: "all
// octets = <<...>>", or "first 16 octets = <<...>>" for a longer one.
func Octets(payload []byte) string {
	if len(payload) > 16 {
		return "first 16 octets = " + erlangBinary(payload[:16])
	}
	return "all octets = " + erlangBinary(payload)
}

// Unwrap lets callers test the kind with errors.Is.
func (e *BadFrameError) Unwrap() error { return e.Err }

// erlangBinary renders bytes the way Erlang's ~p prints a binary, which is
// what RabbitMQ's frame error texts contain.
func erlangBinary(b []byte) string {
	if len(b) == 0 {
		return "<<>>"
	}
	printable := true
	for _, c := range b {
		if c < 32 || c > 126 {
			printable = false
			break
		}
	}
	var sb strings.Builder
	sb.WriteString("<<")
	if printable {
		sb.WriteByte('"')
		for _, c := range b {
			if c == '"' || c == '\\' {
				sb.WriteByte('\\')
			}
			sb.WriteByte(c)
		}
		sb.WriteByte('"')
	} else {
		for i, c := range b {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(strconv.Itoa(int(c)))
		}
	}
	sb.WriteString(">>")
	return sb.String()
}

// appendFrameHeader appends type, channel and a size.
func appendFrameHeader(b []byte, typ uint8, channel uint16, size uint32) []byte {
	return append(b, typ, byte(channel>>8), byte(channel), byte(size>>24), byte(size>>16), byte(size>>8), byte(size))
}

// AppendMethodFrame appends a method frame for m on channel.
func AppendMethodFrame(b []byte, channel uint16, m Method) []byte {
	b = appendFrameHeader(b, FrameMethod, channel, 0)
	start := len(b)
	b = m.Append(b)
	// Back-fill the size now that the payload is written in place.
	binary.BigEndian.PutUint32(b[start-4:], uint32(len(b)-start))
	return append(b, FrameEnd)
}

// AppendHeaderFrame appends a content header frame. props is the encoded
// property flags and list, as from Properties.Append or ParseContentHeader.
func AppendHeaderFrame(b []byte, channel uint16, classID uint16, bodySize uint64, props []byte) []byte {
	b = appendFrameHeader(b, FrameHeader, channel, uint32(12+len(props)))
	b = binary.BigEndian.AppendUint16(b, classID)
	b = append(b, 0, 0) // weight, always zero
	b = binary.BigEndian.AppendUint64(b, bodySize)
	b = append(b, props...)
	return append(b, FrameEnd)
}

// AppendBodyFrames appends body as content body frames of at most frameMax
// bytes each in total (0: one frame, up to MaxFrameSize). An empty body gets no
// frame. A frameMax under 9 is treated as 9, so each frame carries at least a byte.
func AppendBodyFrames(b []byte, channel uint16, body []byte, frameMax uint32) []byte {
	limit := uint64(MaxFrameSize)
	if frameMax != 0 && frameMax < MaxFrameSize {
		limit = uint64(frameMax)
	}
	chunk := int(max(limit, frameOverhead+1) - frameOverhead)
	for len(body) > 0 {
		n := min(len(body), chunk)
		b = appendFrameHeader(b, FrameBody, channel, uint32(n))
		b = append(b, body[:n]...)
		b = append(b, FrameEnd)
		body = body[n:]
	}
	return b
}

// AppendHeartbeat appends a heartbeat frame (channel 0, empty payload).
func AppendHeartbeat(b []byte) []byte {
	return append(b, FrameHeartbeat, 0, 0, 0, 0, 0, 0, FrameEnd)
}
