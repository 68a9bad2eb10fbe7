package quorum

import (
	"encoding/binary"
	"fmt"
	"slices"
)

const snapshotVersion = 2

// Snapshot encodes the state without message bodies (they are in the log),
// as rabbit_fifo's dehydrated state.
func (s *State) Snapshot() []byte {
	b := []byte{snapshotVersion}
	b = binary.AppendUvarint(b, s.applied)
	b = binary.AppendUvarint(b, uint64(s.cfg.MaxLength))
	b = binary.AppendUvarint(b, uint64(s.cfg.MaxBytes))
	b = append(b, byte(s.cfg.Overflow))
	b = binary.AppendUvarint(b, uint64(s.cfg.DeliveryLimit))
	b = binary.AppendVarint(b, s.cfg.MessageTTL)
	b = append(b, flags(s.cfg.HasTTL, s.cfg.SingleActive))
	b = binary.AppendVarint(b, s.now)
	msg := func(m *message) {
		b = binary.AppendUvarint(b, m.index)
		b = binary.AppendUvarint(b, uint64(m.deliveryCount))
		b = binary.AppendUvarint(b, uint64(m.size))
		b = binary.AppendVarint(b, m.expiry)
	}
	b = binary.AppendUvarint(b, uint64(s.messages.len()))
	s.messages.each(msg)
	b = binary.AppendUvarint(b, uint64(s.returns.len()))
	s.returns.each(msg)
	b = binary.AppendUvarint(b, uint64(s.next))
	b = binary.AppendUvarint(b, uint64(len(s.order)))
	for _, c := range s.order {
		b = binary.AppendUvarint(b, c.id.Pid)
		b = binary.AppendUvarint(b, uint64(len(c.id.Tag)))
		b = append(b, c.id.Tag...)
		b = binary.AppendUvarint(b, uint64(c.prefetch))
		b = binary.AppendVarint(b, int64(c.priority))
		b = binary.AppendUvarint(b, c.nextMsgID)
		if c.cancelled {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
		ids := make([]uint64, 0, len(c.checked))
		for id := range c.checked {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		b = binary.AppendUvarint(b, uint64(len(ids)))
		for _, id := range ids {
			b = binary.AppendUvarint(b, id)
			msg(c.checked[id])
		}
	}
	return b
}

// Restore decodes a snapshot. Its messages have no bodies.
func Restore(data []byte) (*State, error) {
	d := decoder{b: data}
	if v := d.byte(); d.err == nil && v != snapshotVersion {
		return nil, fmt.Errorf("quorum: snapshot version %d", v)
	}
	s := New(Config{})
	s.applied = d.uvarint()
	s.cfg.MaxLength = int64(d.uvarint())
	s.cfg.MaxBytes = int64(d.uvarint())
	s.cfg.Overflow = Overflow(d.byte())
	s.cfg.DeliveryLimit = int64(d.uvarint())
	s.cfg.MessageTTL = d.varint()
	f := d.byte()
	s.cfg.HasTTL, s.cfg.SingleActive = f&1 != 0, f&2 != 0
	s.now = d.varint()
	msg := func() *message {
		m := &message{index: d.uvarint(), deliveryCount: uint32(d.uvarint()), size: uint32(d.uvarint()), expiry: d.varint()}
		s.live++
		return m
	}
	list := func(f *fifo) {
		n := d.uvarint()
		for i := uint64(0); i < n && d.err == nil; i++ {
			m := msg()
			f.push(m)
			s.readyBytes += int64(m.size)
		}
	}
	list(&s.messages)
	list(&s.returns)
	s.next = int(d.uvarint())
	n := d.uvarint()
	for i := uint64(0); i < n && d.err == nil; i++ {
		c := &consumer{checked: make(map[uint64]*message)}
		c.id.Pid = d.uvarint()
		c.id.Tag = string(d.bytes())
		c.prefetch = uint32(d.uvarint())
		c.priority = int32(d.varint())
		c.nextMsgID = d.uvarint()
		c.cancelled = d.byte() == 1
		k := d.uvarint()
		for j := uint64(0); j < k && d.err == nil; j++ {
			id := d.uvarint()
			c.checked[id] = msg()
		}
		s.consumers[c.id] = c
		s.order = append(s.order, c)
	}
	if d.err != nil {
		return nil, fmt.Errorf("quorum: snapshot: %w", d.err)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("quorum: snapshot: %d trailing bytes", len(d.b))
	}
	return s, nil
}

// flags packs booleans into a byte, the first in bit 0.
func flags(bs ...bool) byte {
	var f byte
	for i, b := range bs {
		if b {
			f |= 1 << i
		}
	}
	return f
}
