package queue

import (
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkPushGet is basic.publish then basic.get on an empty queue.
func BenchmarkPushGet(b *testing.B) {
	q := New("q", Options{})
	m := msg("hello")
	b.ReportAllocs()
	for b.Loop() {
		q.Push(m, nil)
		if _, _, ok := q.Get(true); !ok {
			b.Fatal("empty")
		}
	}
}

// BenchmarkPushConsumer is a publish handed straight to a consumer.
func BenchmarkPushConsumer(b *testing.B) {
	q := New("q", Options{})
	if err := q.AddConsumer(sink{}, false, true, 0); err != nil {
		b.Fatal(err)
	}
	m := msg("hello")
	b.ReportAllocs()
	for b.Loop() {
		q.Push(m, nil)
	}
	if st := q.Stats(); st.Ready != 0 {
		b.Fatalf("%d left ready", st.Ready)
	}
}

// BenchmarkBacklog1M pushes a million messages with nobody consuming, then
// drains them; one op is one message in and out.
func BenchmarkBacklog1M(b *testing.B) {
	const n = 1 << 20
	m := msg("hello")
	b.ReportAllocs()
	for b.Loop() {
		q := New("q", Options{})
		for range n {
			q.Push(m, nil)
		}
		for range n {
			q.Get(true)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/msg")
}

// sink takes every delivery.
type sink struct{}

func (sink) Deliver(Interface, Delivery) bool { return true }
func (sink) Cancel(Interface)                 {}

// BenchmarkPriorityPushGet publishes with priorities spread over ten levels
// of an x-max-priority 255 queue holding a standing backlog, and takes the
// head each time: the cost must not depend on the 245 levels never used.
func BenchmarkPriorityPushGet(b *testing.B) {
	cfg := defaultConfig()
	cfg.MaxPriority = 255
	q := New("q", Options{Config: cfg})
	ms := make([]*Message, 10)
	for i := range ms {
		ms[i] = &Message{Body: []byte("p"), Priority: uint8(i * 25)}
	}
	for i := range 10000 {
		q.Push(ms[i%10], nil)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		q.Push(ms[i%10], nil)
		if _, _, ok := q.Get(true); !ok {
			b.Fatal("empty")
		}
		i++
	}
}

// BenchmarkExpiry1M pushes a million messages with random per-message TTLs
// (1..50 ms) and waits until every one has expired where it sat; one op is
// one message.
func BenchmarkExpiry1M(b *testing.B) {
	const n = 1 << 20
	rng := rand.New(rand.NewPCG(7, 8))
	ms := make([]*Message, 1024)
	for i := range ms {
		ms[i] = &Message{Body: []byte("t"), Expiration: 1 + rng.Int64N(50), HasExpiration: true}
	}
	b.ReportAllocs()
	for b.Loop() {
		q := New("q", Options{})
		for i := range n {
			q.Push(ms[i%len(ms)], nil)
		}
		for q.Stats().Ready > 0 {
			time.Sleep(time.Millisecond)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/msg")
}

func defaultConfig() Config {
	return Config{MessageTTL: -1, MaxLength: -1, MaxLengthBytes: -1, DeliveryLimit: -1}
}
