package storage

import (
	"encoding/binary"
	"testing"
	"time"
)

// benchBody is a typical small message.
var benchBody = make([]byte, 1024)

// publish is what the broker does per persistent message on one durable
// queue: one body, one entry, one commit.
func publish(s *Store, batch *Batch, entry []byte) error {
	id := s.NextMessageID()
	batch.Reset()
	batch.PutMessage(id, benchBody)
	batch.PutEntry("bench", id, binary.BigEndian.AppendUint64(entry[:0], id))
	return s.Commit(batch)
}

func report(b *testing.B, s *Store, before Stats) {
	st := s.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
	if n := st.Commits - before.Commits; n > 0 {
		b.ReportMetric(float64(st.Batches-before.Batches)/float64(n), "batches/txn")
	}
}

var benchDelays = []struct {
	name  string
	delay time.Duration
}{{"nowait", -1}, {"delay=1ms", time.Millisecond}}

// BenchmarkCommitSerial: one publisher waiting for each confirm, with fsync.
func BenchmarkCommitSerial(b *testing.B) {
	for _, d := range benchDelays {
		b.Run(d.name, func(b *testing.B) {
			s := open(b, b.TempDir(), Options{MaxBatchDelay: d.delay})
			var batch Batch
			entry := make([]byte, 8)
			before := s.Stats()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := publish(s, &batch, entry); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			report(b, s, before)
		})
	}
}

// BenchmarkCommitParallel: many publishers (64 per CPU) waiting for their
// confirms, with fsync; group commit lets them share fsyncs.
func BenchmarkCommitParallel(b *testing.B) {
	for _, d := range benchDelays {
		b.Run(d.name, func(b *testing.B) {
			s := open(b, b.TempDir(), Options{MaxBatchDelay: d.delay})
			before := s.Stats()
			b.ReportAllocs()
			b.SetParallelism(64)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var batch Batch
				entry := make([]byte, 8)
				for pb.Next() {
					if err := publish(s, &batch, entry); err != nil {
						b.Error(err) // not Fatal: this is not the benchmark's goroutine
						return
					}
				}
			})
			b.StopTimer()
			report(b, s, before)
		})
	}
}

// BenchmarkCommitParallelNoSync shows the committer's own cost without the disk.
func BenchmarkCommitParallelNoSync(b *testing.B) {
	s := open(b, b.TempDir(), Options{NoSync: true})
	before := s.Stats()
	b.ReportAllocs()
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var batch Batch
		entry := make([]byte, 8)
		for pb.Next() {
			if err := publish(s, &batch, entry); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	report(b, s, before)
}
