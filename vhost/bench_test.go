package vhost_test

import (
	"fmt"
	"testing"

	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/vhost"
)

func benchPublish(b *testing.B, v *vhost.VHost, ps []vhost.Publishing, want int) {
	b.Helper()
	s := &vhost.Scratch{}
	if n, err := v.Publish(&ps[0], s, nil); err != nil || (want >= 0 && n.Queues != want) {
		b.Fatalf("routed to %d (%v), want %d", n.Queues, err, want)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := v.Publish(&ps[i%len(ps)], s, nil); err != nil {
			b.Fatal(err)
		}
		if i%4096 == 4095 {
			b.StopTimer()
			for _, q := range v.Queues() {
				q.Purge()
			}
			b.StartTimer()
		}
	}
}

func mustApply(b *testing.B, v *vhost.VHost, ops ...vhost.Op) {
	b.Helper()
	for _, op := range ops {
		if _, err := v.Apply(op); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishDefault publishes through the default exchange to one
// queue with no consumer.
func BenchmarkPublishDefault(b *testing.B) {
	v := vhost.New("/", vhost.Options{})
	mustApply(b, v, vhost.DeclareQueue{Name: "q"})
	m := &queue.Message{RoutingKey: "q", Body: []byte("hello")}
	benchPublish(b, v, []vhost.Publishing{{RoutingKey: "q", Message: m}}, 1)
}

// BenchmarkPublishFanout10 publishes to a fanout exchange bound to 10 queues.
func BenchmarkPublishFanout10(b *testing.B) {
	v := vhost.New("/", vhost.Options{})
	mustApply(b, v, vhost.DeclareExchange{Name: "f", Kind: "fanout"})
	for i := range 10 {
		name := fmt.Sprint("q", i)
		mustApply(b, v, vhost.DeclareQueue{Name: name}, vhost.Bind{Source: "f", Destination: name})
	}
	m := &queue.Message{Body: []byte("hello")}
	benchPublish(b, v, []vhost.Publishing{{Exchange: "f", Message: m}}, 10)
}

// BenchmarkPublishTopic1000 publishes to a topic exchange with 1000 bindings
// (to 100 queues), keys matching a handful of them.
func BenchmarkPublishTopic1000(b *testing.B) {
	v := vhost.New("/", vhost.Options{})
	mustApply(b, v, vhost.DeclareExchange{Name: "t", Kind: "topic"})
	regions := []string{"eu", "us", "ap", "sa", "af"}
	for i := range 100 {
		mustApply(b, v, vhost.DeclareQueue{Name: fmt.Sprint("q", i)})
	}
	for i := range 1000 {
		ent := fmt.Sprint("entity", i/10)
		var key string
		switch i % 4 {
		case 0:
			key = ent + "." + regions[i%5] + ".placed"
		case 1:
			key = ent + ".*.paid"
		case 2:
			key = ent + "." + regions[i%5] + ".#"
		case 3:
			key = "*." + regions[i%5] + ".ev" + fmt.Sprint(i)
		}
		mustApply(b, v, vhost.Bind{Source: "t", Destination: fmt.Sprint("q", i%100), Key: key})
	}
	m := &queue.Message{Body: []byte("hello")}
	var ps []vhost.Publishing
	for _, k := range []string{"entity7.eu.placed", "entity42.us.paid", "entity3.ap.x.y", "nobody.home"} {
		ps = append(ps, vhost.Publishing{Exchange: "t", RoutingKey: k, Message: m})
	}
	benchPublish(b, v, ps, -1)
}
