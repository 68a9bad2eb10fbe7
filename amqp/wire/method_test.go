package wire

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
)

// allMethods returns a new value of every generated method type.
func allMethods() []Method {
	var ms []Method
	for c := uint16(0); c < 256; c++ {
		for m := uint16(0); m < 256; m++ {
			if x := NewMethod(c, m); x != nil {
				ms = append(ms, x)
			}
		}
	}
	return ms
}

// fill sets every field of m to a non-zero value derived from seed.
func fill(m Method, seed int) {
	v := reflect.ValueOf(m).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		name := v.Type().Field(i).Name
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			f.SetUint(uint64(seed+i+1) * 0x0101)
		case reflect.String:
			f.SetString(fmt.Sprintf("%s-%d", name, seed))
		case reflect.Map:
			f.Set(reflect.ValueOf(Table{"x-" + name: int32(seed), "nested": Table{"b": true}}))
		default:
			panic("unhandled kind " + f.Kind().String())
		}
	}
}

func TestAllMethodsRoundTrip(t *testing.T) {
	ms := allMethods()
	require.Len(t, ms, 66) // every method in amqp-rabbitmq-0.9.1.json, access class included
	var d MethodDecoder
	for i, m := range ms {
		t.Run(m.Name(), func(t *testing.T) {
			fill(m, i)
			payload := m.Append(nil)
			got, err := d.Decode(payload)
			require.NoError(t, err)
			require.Equal(t, m, got)
			require.Equal(t, m.Name(), MethodName(m.ClassID(), m.MethodID()))
			require.Equal(t, payload, got.Append(nil))

			// Every truncation must fail cleanly.
			for n := 0; n < len(payload); n++ {
				_, err := d.Decode(payload[:n])
				require.ErrorIs(t, err, ErrMalformed, "truncated to %d", n)
			}
			_, err = d.Decode(append(payload, 0))
			require.ErrorIs(t, err, ErrMalformed, "trailing byte")
		})
	}
}

// TestBitsAreDistinct sets each bool field alone and checks it alone survives a round trip.
func TestBitsAreDistinct(t *testing.T) {
	var d MethodDecoder
	for _, m := range allMethods() {
		v := reflect.ValueOf(m).Elem()
		for i := 0; i < v.NumField(); i++ {
			if v.Field(i).Kind() != reflect.Bool {
				continue
			}
			v.SetZero()
			v.Field(i).SetBool(true)
			got, err := d.Decode(m.Append(nil))
			require.NoError(t, err)
			require.Equal(t, m, got, "%s.%s", m.Name(), v.Type().Field(i).Name)
		}
	}
}

func TestBitPackingWire(t *testing.T) {
	tests := []struct {
		name string
		m    Method
		want []byte
	}{
		{
			"queue.declare passive+exclusive+nowait",
			&QueueDeclare{Queue: "q", Passive: true, Exclusive: true, NoWait: true},
			[]byte{0, 50, 0, 10, 0, 0, 1, 'q', 0x15, 0, 0, 0, 0},
		},
		{
			"queue.declare durable+auto-delete",
			&QueueDeclare{Queue: "q", Durable: true, AutoDelete: true},
			[]byte{0, 50, 0, 10, 0, 0, 1, 'q', 0x0A, 0, 0, 0, 0},
		},
		{
			"queue.declare all five",
			&QueueDeclare{Passive: true, Durable: true, Exclusive: true, AutoDelete: true, NoWait: true},
			[]byte{0, 50, 0, 10, 0, 0, 0, 0x1F, 0, 0, 0, 0},
		},
		{
			"basic.consume no-ack+nowait",
			&BasicConsume{Queue: "q", ConsumerTag: "c", NoAck: true, NoWait: true},
			[]byte{0, 60, 0, 20, 0, 0, 1, 'q', 1, 'c', 0x0A, 0, 0, 0, 0},
		},
		{
			"basic.consume no-local+exclusive",
			&BasicConsume{NoLocal: true, Exclusive: true},
			[]byte{0, 60, 0, 20, 0, 0, 0, 0, 0x05, 0, 0, 0, 0},
		},
		{
			"exchange.declare durable+internal",
			&ExchangeDeclare{Exchange: "x", Type: "topic", Durable: true, Internal: true},
			append([]byte{0, 40, 0, 10, 0, 0, 1, 'x', 5}, append([]byte("topic"), 0x0A, 0, 0, 0, 0)...),
		},
		{
			"basic.nack multiple+requeue",
			&BasicNack{DeliveryTag: 7, Multiple: true, Requeue: true},
			[]byte{0, 60, 0, 120, 0, 0, 0, 0, 0, 0, 0, 7, 0x03},
		},
		{
			"basic.publish mandatory",
			&BasicPublish{Exchange: "", RoutingKey: "k", Mandatory: true},
			[]byte{0, 60, 0, 40, 0, 0, 0, 1, 'k', 0x01},
		},
		{
			"basic.deliver redelivered (bit between other fields)",
			&BasicDeliver{ConsumerTag: "c", DeliveryTag: 1, Redelivered: true, Exchange: "e", RoutingKey: "r"},
			[]byte{0, 60, 0, 60, 1, 'c', 0, 0, 0, 0, 0, 0, 0, 1, 0x01, 1, 'e', 1, 'r'},
		},
	}
	var d MethodDecoder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.m.Append(nil))
			got, err := d.Decode(tt.want)
			require.NoError(t, err)
			require.Equal(t, tt.m, got)
		})
	}
}

func TestMethodFlags(t *testing.T) {
	sync := map[string]bool{
		"basic.recover": true, "basic.qos": true, "basic.get": true, "channel.flow": true,
		"confirm.select": true, "connection.update-secret": true, "queue.declare": true,
		"basic.recover-async": false, "basic.publish": false, "basic.ack": false,
		"basic.nack": false, "queue.declare-ok": false, "connection.blocked": false,
	}
	content := map[string]bool{"basic.publish": true, "basic.return": true, "basic.deliver": true, "basic.get-ok": true}
	seen := 0
	for _, m := range allMethods() {
		if want, ok := sync[m.Name()]; ok {
			require.Equal(t, want, m.Synchronous(), m.Name())
			seen++
		}
		require.Equal(t, content[m.Name()], m.HasContent(), m.Name())
	}
	require.Equal(t, len(sync), seen)
}

func TestConstants(t *testing.T) {
	require.EqualValues(t, 0xCE, FrameEnd)
	require.Equal(t, "NOT_FOUND", ReplyText(NotFound))
	require.Equal(t, "PRECONDITION_FAILED", ReplyText(PreconditionFailed))
	require.Equal(t, "NO_ROUTE", ReplyText(NoRoute))
	require.Equal(t, "", ReplyText(999))
	require.True(t, IsHardError(ChannelError))
	require.True(t, IsHardError(FrameError))
	require.False(t, IsHardError(NotFound))
	require.True(t, IsSoftError(PreconditionFailed))
	require.False(t, IsHardError(ReplySuccess))
	require.EqualValues(t, 85, ClassConfirm)
}

func TestDecoderErrors(t *testing.T) {
	var d MethodDecoder
	_, err := d.Decode([]byte{0, 60})
	require.ErrorIs(t, err, ErrMalformed)

	_, err = d.Decode([]byte{0, 99, 0, 1})
	var unknown *UnknownMethodError
	require.True(t, errors.As(err, &unknown))
	require.Equal(t, UnknownMethodError{ClassID: 99, MethodID: 1}, *unknown)

	// A table whose declared size runs past the payload.
	_, err = d.Decode([]byte{0, 50, 0, 10, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF})
	require.ErrorIs(t, err, ErrMalformed)
}

// TestDecoderReuse checks that a decoder returns its own reused value and that
// decoding does not allocate for methods without strings or tables.
func TestDecoderReuse(t *testing.T) {
	var d MethodDecoder
	payload := (&BasicAck{DeliveryTag: 42, Multiple: true}).Append(nil)
	m1, err := d.Decode(payload)
	require.NoError(t, err)
	m2, err := d.Decode(payload)
	require.NoError(t, err)
	require.Same(t, m1, m2)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := d.Decode(payload); err != nil {
			panic(err)
		}
	})
	require.Zero(t, allocs)
}
