package amqp

import (
	"testing"

	"github.com/warrenmq/warren/amqp/wire"
)

func TestFastFrame(t *testing.T) {
	method := func(m wire.Method) []byte {
		f := wire.AppendMethodFrame(nil, 1, m)
		return f[7 : len(f)-1]
	}
	tests := []struct {
		name    string
		typ     uint8
		payload []byte
		want    bool
	}{
		{"publish", wire.FrameMethod, method(&wire.BasicPublish{RoutingKey: "q"}), true},
		{"ack", wire.FrameMethod, method(&wire.BasicAck{DeliveryTag: 1}), true},
		{"nack", wire.FrameMethod, method(&wire.BasicNack{DeliveryTag: 1}), true},
		{"reject", wire.FrameMethod, method(&wire.BasicReject{DeliveryTag: 1}), true},
		{"header", wire.FrameHeader, []byte{0, 60, 0, 0}, true},
		{"body", wire.FrameBody, []byte("x"), true},
		{"queue.declare may wait for the disk", wire.FrameMethod, method(&wire.QueueDeclare{Queue: "q"}), false},
		{"basic.get", wire.FrameMethod, method(&wire.BasicGet{Queue: "q"}), false},
		{"channel.close", wire.FrameMethod, method(&wire.ChannelClose{}), false},
		{"heartbeat", wire.FrameHeartbeat, nil, false},
		{"short method", wire.FrameMethod, []byte{0, 60}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fastFrame(tt.typ, tt.payload); got != tt.want {
				t.Errorf("fastFrame = %v, want %v", got, tt.want)
			}
		})
	}
}
