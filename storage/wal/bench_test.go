package wal

import (
	"fmt"
	"sync"
	"testing"
)

// BenchmarkGroupCommit appends 16 B records from P producers, each waiting
// for its record to be durable before the next (window 1) or keeping W in
// flight, and reports fsyncs per batch (always 1) and records per fsync.
func BenchmarkGroupCommit(b *testing.B) {
	for _, c := range []struct{ producers, window int }{{1, 1}, {4, 1}, {1, 64}, {4, 64}} {
		b.Run(fmt.Sprintf("producers=%d/window=%d", c.producers, c.window), func(b *testing.B) {
			l, _, err := Open(b.TempDir(), Options{SegmentSize: 64 << 20})
			if err != nil {
				b.Fatal(err)
			}
			payload := make([]byte, 16)
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			per := b.N / c.producers
			for p := 0; p < c.producers; p++ {
				wg.Add(1)
				go func(p int) {
					defer wg.Done()
					sem := make(chan struct{}, c.window)
					done := func(err error) {
						if err != nil {
							b.Error(err)
						}
						<-sem
					}
					for i := 0; i < per; i++ {
						sem <- struct{}{}
						if err := l.Append(Record{Stream: uint64(p), Kind: 1, Index: uint64(i), Payload: payload}, done); err != nil {
							b.Error(err)
							return
						}
					}
					for i := 0; i < c.window; i++ {
						sem <- struct{}{}
					}
				}(p)
			}
			wg.Wait()
			b.StopTimer()
			st := l.Stats()
			b.ReportMetric(float64(st.Syncs)/float64(st.Batches), "fsyncs/batch")
			b.ReportMetric(float64(st.Records)/float64(st.Syncs), "records/fsync")
			b.ReportMetric(float64(st.Syncs)/b.Elapsed().Seconds(), "fsyncs/s")
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
