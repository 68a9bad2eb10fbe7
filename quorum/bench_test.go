package quorum

import (
	"fmt"
	"sync"
	"testing"
)

// BenchmarkEnqueueCommitted proposes 16 B enqueues to one group and waits
// for each to be committed, durable and applied, from P producers keeping W
// in flight each (W=1: one at a time, like a publisher waiting for each
// confirm).
func BenchmarkEnqueueCommitted(b *testing.B) {
	for _, c := range []struct{ producers, window int }{{1, 1}, {4, 1}, {1, 100}, {4, 100}} {
		b.Run(fmt.Sprintf("producers=%d/window=%d", c.producers, c.window), func(b *testing.B) {
			n, err := OpenNode(NodeOptions{Dir: b.TempDir(), SegmentSize: 64 << 20})
			if err != nil {
				b.Fatal(err)
			}
			g, err := n.Create(1, Config{})
			if err != nil {
				b.Fatal(err)
			}
			// Wait for the group to lead.
			done := make(chan error, 1)
			purge := Command{Type: CmdPurge}
			g.Propose(&purge, func(_ Result, err error) { done <- err })
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			before := n.WALStats()
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			per := b.N / c.producers
			for p := 0; p < c.producers; p++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sem := make(chan struct{}, c.window)
					cb := func(_ Result, err error) {
						if err != nil {
							b.Error(err)
						}
						<-sem
					}
					cmd := Command{Type: CmdEnqueue, Body: make([]byte, 16)}
					for i := 0; i < per; i++ {
						sem <- struct{}{}
						if err := g.Propose(&cmd, cb); err != nil {
							b.Error(err)
							return
						}
					}
					for i := 0; i < c.window; i++ {
						sem <- struct{}{}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			st := n.WALStats()
			syncs := st.Syncs - before.Syncs
			b.ReportMetric(float64(syncs)/b.Elapsed().Seconds(), "fsyncs/s")
			b.ReportMetric(float64(b.N)/float64(syncs), "enqueues/fsync")
			n.Close()
		})
	}
}
