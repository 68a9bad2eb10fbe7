package quorum

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// CommandType is what a command asks of the queue.
type CommandType uint8

// The commands, after rabbit_fifo's.
const (
	CmdEnqueue  CommandType = iota + 1 // a publish
	CmdCheckout                        // a consumer starts, with a prefetch (0: unlimited)
	CmdCancel                          // a consumer stops taking new deliveries (basic.cancel)
	CmdSettle                          // acks
	CmdReturn                          // requeues (nack/reject requeue=true): delivery count +1
	CmdDiscard                         // rejects without requeue: dead-lettered
	CmdPurge                           // drops the ready messages
	CmdDown                            // a channel or connection is gone: its consumers' messages return
	CmdDequeue                         // basic.get: the next message, settled at once or checked out to a one-shot consumer
	CmdExpire                          // the clock moved: expire the messages at the head whose TTL ran out
)

var cmdNames = [...]string{"", "enqueue", "checkout", "cancel", "settle", "return", "discard", "purge", "down", "dequeue", "expire"}

func (t CommandType) String() string {
	if int(t) < len(cmdNames) && t != 0 {
		return cmdNames[t]
	}
	return fmt.Sprintf("command(%d)", uint8(t))
}

// ConsumerID names a consumer: the channel (or connection) it belongs to
// and its consumer tag, as rabbit_fifo's {Tag, Pid}.
type ConsumerID struct {
	Pid uint64
	Tag string
}

// Command is one entry of a queue's log.
type Command struct {
	Type     CommandType
	Consumer ConsumerID // checkout, cancel, settle, return, discard, dequeue
	Prefetch uint32     // checkout
	Priority int32      // checkout: x-priority
	Settled  bool       // dequeue: no-ack
	MsgIDs   []uint64   // settle, return, discard
	Body     []byte     // enqueue
	// Size is what an enqueued message counts against x-max-length-bytes
	// (its AMQP body, which Body holds with its envelope).
	Size uint32
	Pid  uint64 // down
	// Time is the proposer's clock (unix ms) for enqueue, dequeue and
	// expire: TTLs are computed from it, so that every member expires the
	// same messages at the same index.
	Time int64
	// TTL is the message's own expiration in ms (enqueue), when HasTTL.
	TTL    int64
	HasTTL bool
}

var errShort = errors.New("quorum: truncated command")

// AppendTo encodes c after b.
func (c *Command) AppendTo(b []byte) []byte {
	b = append(b, byte(c.Type))
	switch c.Type {
	case CmdEnqueue:
		b = binary.AppendVarint(b, c.Time)
		ttl := int64(-1)
		if c.HasTTL {
			ttl = max(c.TTL, 0)
		}
		b = binary.AppendVarint(b, ttl)
		b = binary.AppendUvarint(b, uint64(c.Size))
		b = binary.AppendUvarint(b, uint64(len(c.Body)))
		b = append(b, c.Body...)
	case CmdExpire:
		b = binary.AppendVarint(b, c.Time)
	case CmdCheckout, CmdCancel, CmdSettle, CmdReturn, CmdDiscard, CmdDequeue:
		b = binary.AppendUvarint(b, c.Consumer.Pid)
		b = binary.AppendUvarint(b, uint64(len(c.Consumer.Tag)))
		b = append(b, c.Consumer.Tag...)
		switch c.Type {
		case CmdDequeue:
			b = binary.AppendVarint(b, c.Time)
			if c.Settled {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		case CmdCheckout:
			b = binary.AppendUvarint(b, uint64(c.Prefetch))
			b = binary.AppendVarint(b, int64(c.Priority))
		case CmdSettle, CmdReturn, CmdDiscard:
			b = binary.AppendUvarint(b, uint64(len(c.MsgIDs)))
			for _, id := range c.MsgIDs {
				b = binary.AppendUvarint(b, id)
			}
		}
	case CmdDown:
		b = binary.AppendUvarint(b, c.Pid)
	}
	return b
}

// decoder reads uvarints and byte strings, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errShort
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.err = errShort
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// DecodeCommand decodes one command; its Body aliases b.
func DecodeCommand(b []byte) (Command, error) {
	d := decoder{b: b}
	c := Command{Type: CommandType(d.byte())}
	switch c.Type {
	case CmdEnqueue:
		c.Time = d.varint()
		c.TTL = d.varint()
		c.HasTTL = c.TTL >= 0
		c.Size = uint32(d.uvarint())
		c.Body = d.bytes()
	case CmdExpire:
		c.Time = d.varint()
	case CmdCheckout, CmdCancel, CmdSettle, CmdReturn, CmdDiscard, CmdDequeue:
		c.Consumer.Pid = d.uvarint()
		c.Consumer.Tag = string(d.bytes())
		switch c.Type {
		case CmdDequeue:
			c.Time = d.varint()
			c.Settled = d.byte() == 1
		case CmdCheckout:
			c.Prefetch = uint32(d.uvarint())
			c.Priority = int32(d.varint())
		case CmdSettle, CmdReturn, CmdDiscard:
			n := d.uvarint()
			if n > uint64(len(d.b)) {
				return c, errShort
			}
			c.MsgIDs = make([]uint64, 0, n)
			for i := uint64(0); i < n; i++ {
				c.MsgIDs = append(c.MsgIDs, d.uvarint())
			}
		}
	case CmdPurge:
	case CmdDown:
		c.Pid = d.uvarint()
	default:
		if d.err == nil {
			return c, fmt.Errorf("quorum: unknown command %d", c.Type)
		}
	}
	if d.err == nil && len(d.b) != 0 {
		return c, fmt.Errorf("quorum: %d bytes after %s command", len(d.b), c.Type)
	}
	return c, d.err
}
