package amqp

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp/wire"
)

// extendAck must produce exactly what the codec encodes for the extended ack.
func TestExtendAck(t *testing.T) {
	for _, tc := range []struct {
		from     wire.BasicAck
		tag      uint64
		channel  uint16
		multiple bool
	}{
		{wire.BasicAck{DeliveryTag: 5}, 9, 1, true},
		{wire.BasicAck{DeliveryTag: 1 << 40, Multiple: true}, 1<<40 + 3, 65535, true},
		{wire.BasicAck{DeliveryTag: 7}, 6, 2, true}, // an early ack above the tag stays covered
	} {
		frame := wire.AppendMethodFrame(nil, tc.channel, &tc.from)
		require.Len(t, frame, ackFrameLen)
		extendAck(frame, tc.tag)
		want := wire.AppendMethodFrame(nil, tc.channel, &wire.BasicAck{DeliveryTag: max(tc.tag, tc.from.DeliveryTag), Multiple: tc.multiple})
		assert.Equal(t, want, frame)
	}
}

// confirmsIn decodes the publisher confirms in out: tag, multiple, ack.
type confirmFrame struct {
	tag      uint64
	multiple bool
	ack      bool
}

func confirmsIn(t *testing.T, out []byte) []confirmFrame {
	t.Helper()
	fr := wire.NewFrameReader(bytes.NewReader(out), 1<<20)
	var dec wire.MethodDecoder
	var got []confirmFrame
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return got
		}
		m, err := dec.Decode(f.Payload)
		require.NoError(t, err)
		switch m := m.(type) {
		case *wire.BasicAck:
			got = append(got, confirmFrame{m.DeliveryTag, m.Multiple, true})
		case *wire.BasicNack:
			got = append(got, confirmFrame{m.DeliveryTag, m.Multiple, false})
		}
	}
}

// settledBy lists which tags the confirms settle, as a client reads them.
func settledBy(cs []confirmFrame) map[uint64]bool {
	acked := map[uint64]bool{}
	for _, c := range cs {
		if c.multiple {
			for tag := uint64(1); tag <= c.tag; tag++ {
				if _, done := acked[tag]; !done {
					acked[tag] = c.ack
				}
			}
			continue
		}
		if _, done := acked[c.tag]; !done {
			acked[c.tag] = c.ack
		}
	}
	return acked
}

// Confirms settle out of order when a transient publish is confirmed at once
// and a persistent one before it waits for the disk. Coalescing must never
// drop a confirm: every tag is settled exactly as it was decided.
func TestConfirmCoalescingOutOfOrder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		order []uint64
		nack  map[uint64]bool
	}{
		{"later first", []uint64{2, 1}, nil},
		{"later first then more", []uint64{2, 1, 3}, nil},
		{"two early", []uint64{3, 2, 1, 4}, nil},
		{"gap", []uint64{1, 3, 4, 2, 5}, nil},
		{"nack early", []uint64{2, 1, 3}, map[uint64]bool{2: true}},
		{"nack between", []uint64{1, 3, 2, 4}, map[uint64]bool{2: true}},
		{"in order", []uint64{1, 2, 3, 4}, nil},
		{"early above a gap", []uint64{3, 1}, nil},
		{"early above a gap then more", []uint64{3, 1, 4}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &conn{lastAck: -1}
			ch := &channel{c: c, id: 1}
			for _, seq := range tc.order {
				var err error
				if tc.nack[seq] {
					err = errors.New("refused")
				}
				ch.confirmPublish(seq, err)
			}
			got := settledBy(confirmsIn(t, c.out))
			for _, seq := range tc.order {
				ack, ok := got[seq]
				require.True(t, ok, "tag %d never confirmed; frames %+v", seq, confirmsIn(t, c.out))
				assert.Equal(t, !tc.nack[seq], ack, "tag %d", seq)
			}
			for tag := range got {
				assert.Contains(t, tc.order, tag, "tag %d was never published but is confirmed", tag)
			}
		})
	}
}
