package exchange

import (
	"fmt"
	"testing"
)

func benchRoute(b *testing.B, e *Exchange, keys []string, headers map[string]any, want int) {
	b.Helper()
	out := make([]Destination, 0, 1024)
	if n := len(e.Route(keys[0], headers, out)); want >= 0 && n != want {
		b.Fatalf("routed to %d, want %d", n, want)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		out = e.Route(keys[i%len(keys)], headers, out[:0])
	}
}

func BenchmarkDirect1(b *testing.B) {
	e := New("ex", Direct, false, false, false, nil)
	e.Bind(q("q"), "order.placed", nil)
	benchRoute(b, e, []string{"order.placed"}, nil, 1)
}

func BenchmarkDirect1000(b *testing.B) {
	e := New("ex", Direct, false, false, false, nil)
	for i := range 1000 {
		e.Bind(q(fmt.Sprint("q", i)), fmt.Sprint("order.", i), nil)
	}
	benchRoute(b, e, []string{"order.500", "order.7", "order.999"}, nil, 1)
}

func BenchmarkFanout10(b *testing.B) {
	e := New("ex", Fanout, false, false, false, nil)
	for i := range 10 {
		e.Bind(q(fmt.Sprint("q", i)), "", nil)
	}
	benchRoute(b, e, []string{""}, nil, 10)
}

// topicExchange binds n queues with keys like the ones applications use:
// entity.region.event, with some "*" and "#".
func topicExchange(n int) *Exchange {
	e := New("ex", Topic, false, false, false, nil)
	regions := []string{"eu", "us", "ap", "sa", "af"}
	events := []string{"placed", "paid", "shipped", "cancelled"}
	for i := range n {
		ent := fmt.Sprint("entity", i/20)
		var key string
		switch i % 5 {
		case 0:
			key = ent + "." + regions[i%len(regions)] + "." + events[i%len(events)]
		case 1:
			key = ent + ".*." + events[i%len(events)]
		case 2:
			key = ent + "." + regions[i%len(regions)] + ".#"
		case 3:
			key = "*." + regions[i%len(regions)] + "." + fmt.Sprint("ev", i)
		case 4:
			key = ent + ".#." + events[i%len(events)]
		}
		e.Bind(q(fmt.Sprint("q", i)), key, nil)
	}
	e.Bind(q("audit"), "#", nil)
	e.Bind(q("audit"), "*.eu.#", nil)
	return e
}

var topicKeys = []string{"entity3.eu.placed", "entity40.us.paid", "entity7.ap.shipped.late", "order.eu.placed", "entity499.sa.cancelled"}

func BenchmarkTopic1000(b *testing.B) {
	benchRoute(b, topicExchange(1000), topicKeys, nil, -1)
}

func BenchmarkTopic10000(b *testing.B) {
	benchRoute(b, topicExchange(10000), topicKeys, nil, -1)
}

func BenchmarkTopicManyHashes(b *testing.B) {
	e := New("ex", Topic, false, false, false, nil)
	e.Bind(q("q"), "#.a.#.a.#.a.#.a.#", nil)
	benchRoute(b, e, []string{"a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a"}, nil, 1)
}

func BenchmarkHeaders10(b *testing.B) {
	e := New("ex", Headers, false, false, false, nil)
	for i := range 10 {
		e.Bind(q(fmt.Sprint("q", i)), "", map[string]any{
			"x-match": []string{"all", "any"}[i%2], "region": []string{"eu", "us"}[i%2], "kind": fmt.Sprint("k", i%3), "prio": int32(i % 4),
		})
	}
	h := map[string]any{"region": "eu", "kind": "k0", "prio": int64(0), "other": "x"}
	benchRoute(b, e, []string{""}, h, -1)
}

func BenchmarkRouteParallel(b *testing.B) {
	for _, tc := range []struct {
		name string
		e    *Exchange
		keys []string
	}{
		{"direct", func() *Exchange {
			e := New("ex", Direct, false, false, false, nil)
			for i := range 1000 {
				e.Bind(q(fmt.Sprint("q", i)), fmt.Sprint("order.", i), nil)
			}
			return e
		}(), []string{"order.1", "order.500"}},
		{"topic10000", topicExchange(10000), topicKeys},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				out := make([]Destination, 0, 64)
				for i := 0; pb.Next(); i++ {
					out = tc.e.Route(tc.keys[i%len(tc.keys)], nil, out[:0])
				}
			})
		})
	}
}

func BenchmarkBind10000(b *testing.B) {
	for _, kind := range []Kind{Direct, Fanout, Topic} {
		b.Run(kind.String(), func(b *testing.B) {
			names := make([]Destination, 10000)
			for i := range names {
				names[i] = q(fmt.Sprint("q", i))
			}
			b.ReportAllocs()
			for b.Loop() {
				e := New("ex", kind, false, false, false, nil)
				for i, d := range names {
					e.Bind(d, fmt.Sprintf("a.k%d.#", i%100), nil)
				}
			}
		})
	}
}
