package wire

import (
	"encoding/binary"
	"fmt"
)

// Property flag bits of class basic, in wire order (bit 15 first).
const (
	FlagContentType     uint16 = 0x8000
	FlagContentEncoding uint16 = 0x4000
	FlagHeaders         uint16 = 0x2000
	FlagDeliveryMode    uint16 = 0x1000
	FlagPriority        uint16 = 0x0800
	FlagCorrelationID   uint16 = 0x0400
	FlagReplyTo         uint16 = 0x0200
	FlagExpiration      uint16 = 0x0100
	FlagMessageID       uint16 = 0x0080
	FlagTimestamp       uint16 = 0x0040
	FlagType            uint16 = 0x0020
	FlagUserID          uint16 = 0x0010
	FlagAppID           uint16 = 0x0008
	FlagClusterID       uint16 = 0x0004

	// flagContinuation says another flag word follows.
	flagContinuation uint16 = 0x0001
	flagsKnown       uint16 = 0xFFFC
)

// Properties are the content header properties of class basic.
type Properties struct {
	ContentType, ContentEncoding string
	Headers                      Table
	DeliveryMode                 uint8
	Priority                     uint8
	CorrelationID, ReplyTo       string
	Expiration, MessageID        string
	Timestamp                    uint64 // seconds, as on the wire
	Type, UserID, AppID          string
	ClusterID                    string
	// Present has the flag bit of each property that was sent. Append sends a
	// property if its bit is set or its value is not zero, so a property sent
	// empty is sent again and decode+append is byte-exact.
	Present uint16
}

var errContentHeader = fmt.Errorf("%w: content header shorter than 14 bytes", ErrMalformed)

// ParseContentHeader splits a content header frame payload. props (the flags
// and property list) aliases payload. The weight field is ignored, as RabbitMQ does.
func ParseContentHeader(payload []byte) (classID uint16, bodySize uint64, props []byte, err error) {
	if len(payload) < 14 {
		return 0, 0, nil, errContentHeader
	}
	return binary.BigEndian.Uint16(payload), binary.BigEndian.Uint64(payload[4:]), payload[12:], nil
}

// Decode sets p from encoded property flags and list, resetting every field.
// Further flag words (continuation bit) are accepted if they announce no
// properties, since basic defines only 14. Errors wrap ErrMalformed.
func (p *Properties) Decode(props []byte) error {
	// Strings equal to the previous decode's are kept rather than copied
	// again: a publisher's messages mostly repeat their content type, app
	// id and the like.
	prev := *p
	*p = Properties{}
	r := reader{b: props}
	flags := r.short()
	if r.err != nil {
		return r.err
	}
	if flags&^(flagsKnown|flagContinuation) != 0 {
		return fmt.Errorf("%w: unknown property flags 0x%04x", ErrMalformed, flags)
	}
	for more := flags&flagContinuation != 0; more; {
		w := r.short()
		if r.err != nil {
			return r.err
		}
		if w&^flagContinuation != 0 {
			return fmt.Errorf("%w: unknown property flags 0x%04x in continuation", ErrMalformed, w)
		}
		more = w&flagContinuation != 0
	}
	p.Present = flags & flagsKnown
	if flags&FlagContentType != 0 {
		p.ContentType = r.shortstrReuse(prev.ContentType)
	}
	if flags&FlagContentEncoding != 0 {
		p.ContentEncoding = r.shortstrReuse(prev.ContentEncoding)
	}
	if flags&FlagHeaders != 0 {
		p.Headers = r.table()
	}
	if flags&FlagDeliveryMode != 0 {
		p.DeliveryMode = r.octet()
	}
	if flags&FlagPriority != 0 {
		p.Priority = r.octet()
	}
	if flags&FlagCorrelationID != 0 {
		p.CorrelationID = r.shortstrReuse(prev.CorrelationID)
	}
	if flags&FlagReplyTo != 0 {
		p.ReplyTo = r.shortstrReuse(prev.ReplyTo)
	}
	if flags&FlagExpiration != 0 {
		p.Expiration = r.shortstrReuse(prev.Expiration)
	}
	if flags&FlagMessageID != 0 {
		p.MessageID = r.shortstrReuse(prev.MessageID)
	}
	if flags&FlagTimestamp != 0 {
		p.Timestamp = r.longlong()
	}
	if flags&FlagType != 0 {
		p.Type = r.shortstrReuse(prev.Type)
	}
	if flags&FlagUserID != 0 {
		p.UserID = r.shortstrReuse(prev.UserID)
	}
	if flags&FlagAppID != 0 {
		p.AppID = r.shortstrReuse(prev.AppID)
	}
	if flags&FlagClusterID != 0 {
		p.ClusterID = r.shortstrReuse(prev.ClusterID)
	}
	return r.finish()
}

// Flags returns the property flags Append writes: Present plus every non-zero property.
func (p *Properties) Flags() uint16 {
	f := p.Present & flagsKnown
	set := func(ok bool, bit uint16) {
		if ok {
			f |= bit
		}
	}
	set(p.ContentType != "", FlagContentType)
	set(p.ContentEncoding != "", FlagContentEncoding)
	set(p.Headers != nil, FlagHeaders)
	set(p.DeliveryMode != 0, FlagDeliveryMode)
	set(p.Priority != 0, FlagPriority)
	set(p.CorrelationID != "", FlagCorrelationID)
	set(p.ReplyTo != "", FlagReplyTo)
	set(p.Expiration != "", FlagExpiration)
	set(p.MessageID != "", FlagMessageID)
	set(p.Timestamp != 0, FlagTimestamp)
	set(p.Type != "", FlagType)
	set(p.UserID != "", FlagUserID)
	set(p.AppID != "", FlagAppID)
	set(p.ClusterID != "", FlagClusterID)
	return f
}

// Append appends the property flags and list.
func (p *Properties) Append(b []byte) []byte {
	flags := p.Flags()
	b = binary.BigEndian.AppendUint16(b, flags)
	if flags&FlagContentType != 0 {
		b = appendShortstr(b, p.ContentType)
	}
	if flags&FlagContentEncoding != 0 {
		b = appendShortstr(b, p.ContentEncoding)
	}
	if flags&FlagHeaders != 0 {
		b = AppendTable(b, p.Headers)
	}
	if flags&FlagDeliveryMode != 0 {
		b = append(b, p.DeliveryMode)
	}
	if flags&FlagPriority != 0 {
		b = append(b, p.Priority)
	}
	if flags&FlagCorrelationID != 0 {
		b = appendShortstr(b, p.CorrelationID)
	}
	if flags&FlagReplyTo != 0 {
		b = appendShortstr(b, p.ReplyTo)
	}
	if flags&FlagExpiration != 0 {
		b = appendShortstr(b, p.Expiration)
	}
	if flags&FlagMessageID != 0 {
		b = appendShortstr(b, p.MessageID)
	}
	if flags&FlagTimestamp != 0 {
		b = binary.BigEndian.AppendUint64(b, p.Timestamp)
	}
	if flags&FlagType != 0 {
		b = appendShortstr(b, p.Type)
	}
	if flags&FlagUserID != 0 {
		b = appendShortstr(b, p.UserID)
	}
	if flags&FlagAppID != 0 {
		b = appendShortstr(b, p.AppID)
	}
	if flags&FlagClusterID != 0 {
		b = appendShortstr(b, p.ClusterID)
	}
	return b
}
