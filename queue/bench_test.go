package queue

import "testing"

// BenchmarkPushGet is basic.publish then basic.get on an empty queue.
func BenchmarkPushGet(b *testing.B) {
	q := New("q", Options{})
	m := msg("hello")
	b.ReportAllocs()
	for b.Loop() {
		q.Push(m)
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
		q.Push(m)
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
			q.Push(m)
		}
		for range n {
			q.Get(true)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/msg")
}

// sink takes every delivery.
type sink struct{}

func (sink) Deliver(*Queue, Delivery) bool { return true }
func (sink) Cancel(*Queue)                 {}
