package wire

import (
	"io"
	"testing"
)

// loopReader replays data forever, standing in for a socket.
type loopReader struct {
	data []byte
	off  int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.data[r.off:])
		n += c
		r.off = (r.off + c) % len(r.data)
	}
	return n, nil
}

var _ io.Reader = (*loopReader)(nil)

func BenchmarkDecodeBasicPublish(b *testing.B) {
	frame := AppendMethodFrame(nil, 1, &BasicPublish{Exchange: "amq.topic", RoutingKey: "orders.eu.created", Mandatory: true})
	r := NewFrameReader(&loopReader{data: frame}, 131072)
	var d MethodDecoder
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		f, err := r.ReadFrame()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := d.Decode(f.Payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeBasicAck is the string-free case: zero allocations expected.
func BenchmarkDecodeBasicAck(b *testing.B) {
	frame := AppendMethodFrame(nil, 1, &BasicAck{DeliveryTag: 123456, Multiple: true})
	r := NewFrameReader(&loopReader{data: frame}, 131072)
	var d MethodDecoder
	b.ReportAllocs()
	for b.Loop() {
		f, err := r.ReadFrame()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := d.Decode(f.Payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeDeliver(b *testing.B) {
	deliver := &BasicDeliver{ConsumerTag: "amq.ctag-abcdefghijklmnop", DeliveryTag: 1, Exchange: "amq.topic", RoutingKey: "orders.eu.created"}
	props := (&Properties{ContentType: "application/json", DeliveryMode: 2, Headers: Table{"x-trace": "abc"}}).Append(nil)
	body := make([]byte, 1024)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		buf = buf[:0]
		deliver.DeliveryTag++
		buf = AppendMethodFrame(buf, 1, deliver)
		buf = AppendHeaderFrame(buf, 1, ClassBasic, uint64(len(body)), props)
		buf = AppendBodyFrames(buf, 1, body, 131072)
	}
}

// BenchmarkEncodeDeliverWithProperties also encodes the properties (headers table included).
func BenchmarkEncodeDeliverWithProperties(b *testing.B) {
	deliver := &BasicDeliver{ConsumerTag: "amq.ctag-abcdefghijklmnop", DeliveryTag: 1, Exchange: "amq.topic", RoutingKey: "orders.eu.created"}
	p := &Properties{ContentType: "application/json", DeliveryMode: 2, Headers: Table{"x-trace": "abc", "x-retries": int32(2)}}
	body := make([]byte, 1024)
	buf := make([]byte, 0, 4096)
	var props []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		buf = AppendMethodFrame(buf, 1, deliver)
		props = p.Append(props[:0])
		buf = AppendHeaderFrame(buf, 1, ClassBasic, uint64(len(body)), props)
		buf = AppendBodyFrames(buf, 1, body, 131072)
	}
}

func BenchmarkDecodeTable(b *testing.B) {
	enc := AppendTable(nil, Table{
		"x-message-ttl": int32(60000), "x-dead-letter-exchange": "dlx", "x-queue-type": "classic",
		"x-max-length": int64(100000), "flag": true, "nested": Table{"a": uint8(1)},
	})
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, _, err := DecodeTable(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendTable(b *testing.B) {
	t := Table{"x-message-ttl": int32(60000), "x-dead-letter-exchange": "dlx", "x-queue-type": "classic"}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendTable(buf[:0], t)
	}
}

// BenchmarkReadPublishBatch reads a whole publish (method, header, body
// frames) the way amqp091-go sends it, many per socket read.
func BenchmarkReadPublishBatch(b *testing.B) {
	var msg []byte
	msg = AppendMethodFrame(msg, 1, &BasicPublish{Exchange: "", RoutingKey: "warren-perf-0"})
	props := (&Properties{DeliveryMode: 1}).Append(nil)
	msg = AppendHeaderFrame(msg, 1, ClassBasic, 16, props)
	msg = AppendBodyFrames(msg, 1, make([]byte, 16), 131072)
	r := NewFrameReader(&loopReader{data: msg}, 131072)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		for range 3 {
			if _, err := r.ReadFrame(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
