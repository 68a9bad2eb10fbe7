package amqp

import (
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
	} {
		frame := wire.AppendMethodFrame(nil, tc.channel, &tc.from)
		require.Len(t, frame, ackFrameLen)
		extendAck(frame, tc.tag)
		want := wire.AppendMethodFrame(nil, tc.channel, &wire.BasicAck{DeliveryTag: tc.tag, Multiple: tc.multiple})
		assert.Equal(t, want, frame)
	}
}
