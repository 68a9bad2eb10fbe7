package streamlog

import (
	"fmt"
	"sync"
	"testing"
)

// BenchmarkAppend appends 16 B entries from P producers keeping W in flight
// each (a publisher's confirm window), and reports entries per fsync.
func BenchmarkAppend(b *testing.B) {
	for _, c := range []struct{ producers, window int }{{1, 1}, {1, 100}, {4, 100}} {
		b.Run(fmt.Sprintf("producers=%d/window=%d", c.producers, c.window), func(b *testing.B) {
			l, _, err := Open(b.TempDir(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			payload := make([]byte, 16)
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			per := b.N/c.producers + 1
			for p := 0; p < c.producers; p++ {
				wg.Add(1)
				go func() {
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
						if _, err := l.Append(payload, done); err != nil {
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
			st := l.Stats()
			b.ReportMetric(float64(st.Next)/float64(st.Syncs), "entries/fsync")
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkRead reads 16 B entries from the start of a stream.
func BenchmarkRead(b *testing.B) {
	l, _, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	payload := make([]byte, 16)
	var wg sync.WaitGroup
	for i := 0; i < b.N; i++ {
		wg.Add(1)
		if _, err := l.Append(payload, func(error) { wg.Done() }); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.ReportAllocs()
	b.ResetTimer()
	r := l.NewReader(0)
	for i := 0; i < b.N; i++ {
		if _, ok, err := r.Next(); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
