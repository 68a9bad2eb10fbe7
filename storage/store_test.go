package storage

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// open opens a store in dir and closes it when the test ends.
func open(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// reopen closes s and opens dir again.
func reopen(t testing.TB, s *Store, dir string, opts Options) *Store {
	t.Helper()
	require.NoError(t, s.Close())
	return open(t, dir, opts)
}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// ev is an entry value that references no stored message, with payload s.
func ev(s string) []byte { return append(u64(0), s...) }

func definitions(t *testing.T, s *Store, kind string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, s.Definitions(kind, func(k string, v []byte) error {
		out[k] = string(v)
		return nil
	}))
	return out
}

func entries(t *testing.T, s *Store, queue string) ([]uint64, []string) {
	t.Helper()
	var seqs []uint64
	var vals []string
	require.NoError(t, s.Entries(queue, func(seq uint64, v []byte) error {
		seqs = append(seqs, seq)
		vals = append(vals, string(v[8:]))
		return nil
	}))
	return seqs, vals
}

func TestDefinitionsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{NoSync: true})
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			var b Batch
			b.PutDefinition(kind, "/|a", []byte(kind+"-a"))
			b.PutDefinition(kind, "/|b", []byte(kind+"-b"))
			b.PutDefinition(kind, "/|c", []byte(kind+"-c"))
			require.NoError(t, s.Commit(&b))
			b.Reset()
			b.DeleteDefinition(kind, "/|b")
			b.PutDefinition(kind, "/|c", []byte(kind+"-c2"))
			b.DeleteDefinition(kind, "/|missing")
			require.NoError(t, s.Commit(&b))
		})
	}
	s = reopen(t, s, dir, Options{NoSync: true})
	for _, kind := range kinds {
		assert.Equal(t, map[string]string{"/|a": kind + "-a", "/|c": kind + "-c2"}, definitions(t, s, kind), kind)
	}
	err := s.Definitions("nonsense", func(string, []byte) error { return nil })
	assert.ErrorIs(t, err, ErrInvalid)
}

func TestDefinitionsCallbackError(t *testing.T) {
	s := open(t, t.TempDir(), Options{NoSync: true})
	var b Batch
	b.PutDefinition(KindQueue, "a", nil)
	b.PutDefinition(KindQueue, "b", nil)
	require.NoError(t, s.Commit(&b))
	stop := errors.New("stop")
	calls := 0
	err := s.Definitions(KindQueue, func(string, []byte) error { calls++; return stop })
	assert.ErrorIs(t, err, stop)
	assert.Equal(t, 1, calls)
}

func TestEntriesOrderAfterReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{NoSync: true})
	// Out of order and across byte boundaries: big-endian keys sort numerically.
	seqs := []uint64{300, 2, 1 << 40, 255, 256, 1, 70000}
	var b Batch
	for _, seq := range seqs {
		b.PutEntry("q1", seq, ev(fmt.Sprint("v", seq)))
	}
	b.PutEntry("q2", 7, ev("other"))
	require.NoError(t, s.Commit(&b))

	s = reopen(t, s, dir, Options{NoSync: true})
	got, vals := entries(t, s, "q1")
	want := append([]uint64(nil), seqs...)
	sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
	assert.Equal(t, want, got)
	for i, seq := range got {
		assert.Equal(t, fmt.Sprint("v", seq), vals[i])
	}
	got, _ = entries(t, s, "missing")
	assert.Empty(t, got)
	queues, err := s.Queues()
	require.NoError(t, err)
	assert.Equal(t, []string{"q1", "q2"}, queues)
}

func TestMessages(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{NoSync: true})
	var b Batch
	for id := uint64(1); id <= 5; id++ {
		b.PutMessage(id, []byte(fmt.Sprint("body", id)))
	}
	b.DeleteMessage(3)
	require.NoError(t, s.Commit(&b))

	s = reopen(t, s, dir, Options{NoSync: true})
	tests := []struct {
		id   uint64
		want string
		err  error
	}{
		{1, "body1", nil},
		{3, "", ErrNotFound},
		{5, "body5", nil},
		{6, "", ErrNotFound},
	}
	for _, tt := range tests {
		got, err := s.Message(tt.id)
		if tt.err != nil {
			assert.ErrorIs(t, err, tt.err, "id %d", tt.id)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tt.want, string(got))
	}
}

func TestDeleteQueue(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{NoSync: true})
	var b Batch
	b.PutEntry("a", 1, ev("x"))
	b.PutEntry("a", 2, ev("y"))
	b.PutEntry("b", 1, ev("z"))
	require.NoError(t, s.Commit(&b))
	b.Reset()
	b.DeleteQueue("a")
	b.DeleteQueue("never-existed")
	require.NoError(t, s.Commit(&b))
	b.Reset()
	// Same batch: drop, then new entries recreate the bucket.
	b.PutEntry("b", 2, ev("gone"))
	b.DeleteQueue("b")
	b.PutEntry("b", 3, ev("new"))
	require.NoError(t, s.Commit(&b))

	s = reopen(t, s, dir, Options{NoSync: true})
	queues, err := s.Queues()
	require.NoError(t, err)
	assert.Equal(t, []string{"b"}, queues)
	seqs, vals := entries(t, s, "b")
	assert.Equal(t, []uint64{3}, seqs)
	assert.Equal(t, []string{"new"}, vals)
}

func TestNextMessageIDAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{NoSync: true})
	var last uint64
	for range 10 {
		id := s.NextMessageID()
		require.Greater(t, id, last)
		last = id
	}
	var b Batch
	b.PutMessage(last, []byte("m"))
	require.NoError(t, s.Commit(&b))
	// Acked: no message left, yet the ids must not be reused.
	b.Reset()
	b.DeleteMessage(last)
	require.NoError(t, s.Commit(&b))

	s = reopen(t, s, dir, Options{NoSync: true})
	assert.Greater(t, s.NextMessageID(), last)

	// A file without the mark (older store, or mark lost): the largest
	// stored id is the floor.
	b.Reset()
	b.PutMessage(1000, []byte("m"))
	require.NoError(t, s.Commit(&b))
	require.NoError(t, s.Close())
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyLastID) }))
	require.NoError(t, db.Close())
	s = open(t, dir, Options{NoSync: true})
	assert.Equal(t, uint64(1001), s.NextMessageID())
}

func TestInvalidBatch(t *testing.T) {
	s := open(t, t.TempDir(), Options{NoSync: true})
	tests := []struct {
		name string
		fill func(b *Batch)
	}{
		{"unknown kind", func(b *Batch) { b.PutDefinition("table", "k", nil) }},
		{"empty key", func(b *Batch) { b.DeleteDefinition(KindQueue, "") }},
		{"empty queue", func(b *Batch) { b.PutEntry("", 1, nil) }},
		{"long queue", func(b *Batch) { b.DeleteQueue(string(make([]byte, bolt.MaxKeySize+1))) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Batch
			b.PutMessage(1, []byte("ok"))
			tt.fill(&b)
			assert.ErrorIs(t, s.Commit(&b), ErrInvalid)
			var got error
			s.Submit(&b, func(err error) { got = err }) // runs before Submit returns
			assert.ErrorIs(t, got, ErrInvalid)
			_, err := s.Message(1)
			assert.ErrorIs(t, err, ErrNotFound, "nothing of an invalid batch is written")
			b.Reset()
			assert.NoError(t, s.Commit(&b), "Reset clears the error")
		})
	}
}

// holdCommits makes the committer's next transaction wait until the returned
// release is called, so that later submissions gather into one group.
func holdCommits(t *testing.T, s *Store) (started <-chan struct{}, release func()) {
	t.Helper()
	start := make(chan struct{})
	gate := make(chan struct{})
	var once sync.Once
	hook := func() error {
		once.Do(func() { close(start); <-gate })
		return nil
	}
	s.beforeCommit.Store(&hook)
	return start, func() { close(gate) }
}

// waitPending waits until n batches are pending.
func waitPending(t *testing.T, s *Store, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.in.pending) == n
	}, 5*time.Second, time.Millisecond)
}

func TestCancelPairs(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{NoSync: true})
	var base Batch
	base.PutEntry("q", 1, ev("old"))
	base.PutDefinition(KindQueue, "d", []byte("old"))
	require.NoError(t, s.Commit(&base))

	started, release := holdCommits(t, s)
	var first Batch
	first.PutEntry("other", 1, ev("x"))
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	submit := func(b *Batch) {
		wg.Add(1)
		s.Submit(b, func(err error) { errs <- err; wg.Done() })
	}
	submit(&first)
	<-started

	var b1, b2, b3, b4 Batch
	// Publish then ack within one group: both puts need not be written.
	b1.PutMessage(10, []byte("body"))
	b1.PutEntry("q", 2, u64(10))
	b2.DeleteEntry("q", 2)
	b2.DeleteMessage(10)
	// Overwrite of an existing key then delete: the delete must still apply.
	b3.PutEntry("q", 1, ev("new"))
	b3.DeleteEntry("q", 1)
	b3.PutDefinition(KindQueue, "d", []byte("new"))
	b3.DeleteDefinition(KindQueue, "d")
	// Delete then put again: the put must survive.
	b4.DeleteEntry("q", 3)
	b4.PutEntry("q", 3, ev("kept"))
	b4.PutEntry("dropped", 1, ev("x"))
	b4.DeleteQueue("dropped")
	for _, b := range []*Batch{&b1, &b2, &b3, &b4} {
		submit(b)
	}
	waitPending(t, s, 4)
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, s.Flush()) // puts are cancelled when the journal is applied
	assert.Equal(t, uint64(5), s.Stats().Cancelled)

	s = reopen(t, s, dir, Options{NoSync: true})
	seqs, vals := entries(t, s, "q")
	assert.Equal(t, []uint64{3}, seqs)
	assert.Equal(t, []string{"kept"}, vals)
	_, err := s.Message(10)
	assert.ErrorIs(t, err, ErrNotFound)
	assert.Empty(t, definitions(t, s, KindQueue))
	queues, err := s.Queues()
	require.NoError(t, err)
	assert.Equal(t, []string{"other", "q"}, queues)
}

func TestGroupCommit(t *testing.T) {
	const workers, perWorker = 50, 200
	dir := t.TempDir()
	// Real fsync: while one runs, the next group gathers.
	s := open(t, dir, Options{})
	before := s.Stats().Commits
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b Batch
			for i := range perWorker {
				id := s.NextMessageID()
				b.Reset()
				b.PutMessage(id, []byte("body"))
				b.PutEntry(fmt.Sprint("q", w), uint64(i), u64(id))
				if err := s.Commit(&b); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	st := s.Stats()
	commits := st.Commits - before
	t.Logf("%d batches in %d transactions (%.1f per transaction)", workers*perWorker, commits, float64(workers*perWorker)/float64(commits))
	assert.Less(t, commits, uint64(workers*perWorker/5), "batches must share transactions")
	assert.Equal(t, uint64(0), st.Failures)

	s = reopen(t, s, dir, Options{})
	queues, err := s.Queues()
	require.NoError(t, err)
	assert.Len(t, queues, workers)
	for w := range workers {
		var n int
		require.NoError(t, s.Entries(fmt.Sprint("q", w), func(seq uint64, v []byte) error {
			require.Equal(t, uint64(n), seq)
			body, err := s.Message(binary.BigEndian.Uint64(v))
			require.NoError(t, err)
			require.Equal(t, "body", string(body))
			n++
			return nil
		}))
		assert.Equal(t, perWorker, n)
	}
}

// TestGroupOneJournalSync: the batches of one group are made durable by
// one fdatasync of the journal, however many there are, and are then
// readable once applied.
func TestGroupOneJournalSync(t *testing.T) {
	s := open(t, t.TempDir(), Options{NoSync: true, MaxBatchOps: 4})
	started, release := holdCommits(t, s)
	var wg sync.WaitGroup
	var first Batch
	first.PutMessage(1, nil)
	wg.Add(1)
	s.Submit(&first, func(error) { wg.Done() })
	<-started
	before := s.Stats()
	batches := make([]Batch, 6)
	for i := range batches {
		batches[i].PutEntry("q", uint64(2*i), u64(0))
		batches[i].PutEntry("q", uint64(2*i+1), u64(0))
		wg.Add(1)
		s.Submit(&batches[i], func(err error) { assert.NoError(t, err); wg.Done() })
	}
	waitPending(t, s, 6)
	release()
	wg.Wait()
	after := s.Stats()
	// The held group was counted before its hook ran; its sync was not.
	assert.Equal(t, uint64(1), after.Commits-before.Commits, "the six batches are one group")
	assert.Equal(t, uint64(1+1), after.Journal.Syncs-before.Journal.Syncs, "one fdatasync per group")
	require.NoError(t, s.Flush())
	seqs, _ := entries(t, s, "q")
	assert.Len(t, seqs, 12)
}

func TestMaxBatchDelay(t *testing.T) {
	const delay = 100 * time.Millisecond
	t.Run("lone publisher never waits", func(t *testing.T) {
		s := open(t, t.TempDir(), Options{NoSync: true, MaxBatchDelay: delay})
		start := time.Now()
		var b Batch
		for i := range 20 {
			b.Reset()
			b.PutEntry("q", uint64(i), u64(0))
			require.NoError(t, s.Commit(&b))
		}
		assert.Less(t, time.Since(start), 10*delay)
	})
	t.Run("concurrent publishers gather", func(t *testing.T) {
		const workers, rounds = 8, 20
		s := open(t, t.TempDir(), Options{NoSync: true, MaxBatchDelay: delay})
		start := time.Now()
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var b Batch
				for i := range rounds {
					b.Reset()
					b.PutEntry(fmt.Sprint(w), uint64(i), u64(0))
					assert.NoError(t, s.Commit(&b))
				}
			}()
		}
		wg.Wait()
		st := s.Stats()
		t.Logf("%d batches in %d transactions in %v", st.Batches, st.Commits, time.Since(start))
		// The wait ends when the expected publishers are back, not after the
		// delay: 20 rounds of timeouts would take 2s.
		assert.Less(t, time.Since(start), 10*delay)
		assert.Greater(t, float64(st.Batches)/float64(st.Commits), workers/2.0)
	})
}

func TestCommitFailure(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{NoSync: true})
	injected := errors.New("injected disk failure")
	gate := make(chan struct{})
	started := make(chan struct{})
	var once sync.Once
	hook := func() error {
		once.Do(func() { close(started); <-gate })
		return injected
	}
	s.beforeCommit.Store(&hook)

	const n = 5
	batches := make([]Batch, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	submit := func(i int) {
		batches[i].PutMessage(uint64(i+1), []byte("body"))
		batches[i].PutEntry("q", uint64(i), u64(uint64(i+1)))
		wg.Add(1)
		s.Submit(&batches[i], func(err error) { errs[i] = err; wg.Done() })
	}
	submit(0)
	<-started
	for i := 1; i < n; i++ {
		submit(i)
	}
	waitPending(t, s, n-1)
	close(gate)
	wg.Wait()
	for i, err := range errs {
		assert.ErrorIs(t, err, injected, "batch %d", i)
	}
	st := s.Stats()
	assert.Equal(t, uint64(2), st.Failures, "one failed transaction for the first batch, one for the group of the rest")

	// The store keeps serving; the next commit is tried normally.
	s.beforeCommit.Store(nil)
	var ok Batch
	ok.PutEntry("q", 100, ev("after"))
	require.NoError(t, s.Commit(&ok))

	s = reopen(t, s, dir, Options{NoSync: true})
	seqs, _ := entries(t, s, "q")
	assert.Equal(t, []uint64{100}, seqs, "nothing of the failed transactions is on disk")
	for i := range n {
		_, err := s.Message(uint64(i + 1))
		assert.ErrorIs(t, err, ErrNotFound)
	}
}

func TestCloseFlushesPending(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{NoSync: true, MaxBatchDelay: time.Hour})
	require.NoError(t, err)
	const n = 100
	batches := make([]Batch, n)
	var wg sync.WaitGroup
	for i := range batches {
		batches[i].PutEntry("q", uint64(i), u64(0))
		wg.Add(1)
		s.Submit(&batches[i], func(err error) { assert.NoError(t, err); wg.Done() })
	}
	done := make(chan error)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	wg.Wait()
	require.NoError(t, s.Close(), "second Close")

	var b Batch
	b.PutEntry("q", 1000, u64(0))
	var got error
	s.Submit(&b, func(err error) { got = err })
	assert.ErrorIs(t, got, ErrClosed)
	assert.ErrorIs(t, s.Commit(&b), ErrClosed)
	_, err = s.Message(1)
	assert.ErrorIs(t, err, ErrClosed)

	s = open(t, dir, Options{NoSync: true})
	seqs, _ := entries(t, s, "q")
	assert.Len(t, seqs, n)
}

func TestCloseWhileSubmitting(t *testing.T) {
	s, err := Open(t.TempDir(), Options{NoSync: true})
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	results := map[string]int{}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b Batch
			for i := 0; ; i++ {
				b.Reset()
				b.PutEntry(fmt.Sprint(w), uint64(i), u64(0))
				err := s.Commit(&b)
				mu.Lock()
				results[fmt.Sprint(err)]++
				mu.Unlock()
				if err != nil {
					assert.ErrorIs(t, err, ErrClosed)
					return
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, s.Close())
	wg.Wait()
	t.Log(results)
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, Options{NoSync: true})
	start := time.Now()
	_, err := Open(dir, Options{NoSync: true})
	require.ErrorIs(t, err, ErrLocked)
	assert.Less(t, time.Since(start), time.Second)
	assert.Contains(t, err.Error(), dir)
	assert.Contains(t, err.Error(), "in use")
}

func TestNewerFormat(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{NoSync: true})
	require.NoError(t, s.Close())
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyFormat, binary.BigEndian.AppendUint32(nil, FormatVersion+1))
	}))
	require.NoError(t, db.Close())

	_, err = Open(dir, Options{NoSync: true})
	require.ErrorIs(t, err, ErrNewerFormat)
	assert.Contains(t, err.Error(), dir)
}

func TestCorrupt(t *testing.T) {
	tests := []struct {
		name  string
		write func(t *testing.T, path string)
	}{
		{"short garbage", func(t *testing.T, path string) { writeRandom(t, path, 100) }},
		{"page of garbage", func(t *testing.T, path string) { writeRandom(t, path, 4096) }},
		{"much garbage", func(t *testing.T, path string) { writeRandom(t, path, 1<<20) }},
		{"foreign bbolt file", func(t *testing.T, path string) {
			db, err := bolt.Open(path, 0o600, nil)
			require.NoError(t, err)
			require.NoError(t, db.Update(func(tx *bolt.Tx) error {
				_, err := tx.CreateBucket([]byte("someone else's"))
				return err
			}))
			require.NoError(t, db.Close())
		}},
		{"bad format record", func(t *testing.T, path string) {
			db, err := bolt.Open(path, 0o600, nil)
			require.NoError(t, err)
			require.NoError(t, db.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket(bucketMeta)
				if err != nil {
					return err
				}
				return b.Put(keyFormat, []byte("x"))
			}))
			require.NoError(t, db.Close())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.write(t, filepath.Join(dir, FileName))
			s, err := Open(dir, Options{NoSync: true})
			if err == nil {
				_ = s.Close()
			}
			require.ErrorIs(t, err, ErrCorrupt)
			assert.Contains(t, err.Error(), dir)
		})
	}
}

func writeRandom(t *testing.T, path string, n int) {
	t.Helper()
	buf := make([]byte, n)
	_, err := rand.Read(buf)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, buf, 0o600))
}

func messageIDs(t *testing.T, s *Store) []uint64 {
	t.Helper()
	var ids []uint64
	require.NoError(t, s.Messages(func(id uint64) error { ids = append(ids, id); return nil }))
	return ids
}

// A message lives exactly as long as some entry references it, whichever
// way the entries go, and however often a delete is repeated.
func TestReferences(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{NoSync: true})
	var b Batch
	b.PutMessage(1, []byte("fanned out"))
	b.SetMessageRefs(1, 3)
	b.PutMessage(2, []byte("single"))
	b.PutMessage(3, []byte("refused everywhere"))
	b.SetMessageRefs(3, 0)
	for _, q := range []string{"a", "b", "c"} {
		b.PutEntry(q, 1, u64(1))
	}
	b.PutEntry("a", 2, u64(2))
	require.NoError(t, s.Commit(&b))
	assert.Equal(t, []uint64{1, 2}, messageIDs(t, s))

	steps := []struct {
		name string
		do   func(b *Batch)
		want []uint64
	}{
		{"one of three entries", func(b *Batch) { b.DeleteEntry("a", 1) }, []uint64{1, 2}},
		{"the same entry again", func(b *Batch) { b.DeleteEntry("a", 1) }, []uint64{1, 2}},
		{"a whole queue", func(b *Batch) { b.DeleteQueue("b") }, []uint64{1, 2}},
		{"the last entry", func(b *Batch) { b.DeleteEntry("c", 1); b.DeleteEntry("c", 1) }, []uint64{2}},
		{"an entry rewritten, then deleted", func(b *Batch) {
			b.PutEntry("a", 2, append(u64(2), "count 1"...))
			b.DeleteEntry("a", 2)
		}, nil},
	}
	for _, st := range steps {
		var b Batch
		st.do(&b)
		require.NoError(t, s.Commit(&b), st.name)
		assert.Equal(t, st.want, messageIDs(t, s), st.name)
	}

	// Within one group: a put entry deleted before it is written still
	// drops its reference, and a message is not written at all when every
	// entry referencing it goes the same way.
	started, release := holdCommits(t, s)
	var first Batch
	first.PutEntry("other", 1, u64(0))
	s.Submit(&first, func(error) {})
	<-started
	var p, d Batch
	p.PutMessage(10, []byte("acked in both queues"))
	p.SetMessageRefs(10, 2)
	p.PutMessage(11, []byte("acked in one"))
	p.SetMessageRefs(11, 2)
	p.PutEntry("x", 1, u64(10))
	p.PutEntry("y", 1, u64(10))
	p.PutEntry("x", 2, u64(11))
	p.PutEntry("y", 2, u64(11))
	d.DeleteEntry("x", 1)
	d.DeleteEntry("y", 1)
	d.DeleteEntry("x", 2)
	cancelled := s.Stats().Cancelled
	var wg sync.WaitGroup
	for _, b := range []*Batch{&p, &d} {
		wg.Add(1)
		s.Submit(b, func(err error) { assert.NoError(t, err); wg.Done() })
	}
	waitPending(t, s, 2)
	release()
	wg.Wait()
	require.NoError(t, s.Flush())
	assert.Equal(t, uint64(4), s.Stats().Cancelled-cancelled, "message 10 and three entries")
	assert.Equal(t, []uint64{11}, messageIDs(t, s))
	var last Batch
	last.DeleteQueue("y")
	require.NoError(t, s.Commit(&last))
	assert.Empty(t, messageIDs(t, s))

	s = reopen(t, s, dir, Options{NoSync: true})
	assert.Empty(t, messageIDs(t, s))
}

// A format 1 file kept no reference counts; opening it counts them once
// and drops the messages nothing references.
func TestUpgradeFormat1(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{NoSync: true})
	var b Batch
	for id := uint64(1); id <= 4; id++ {
		b.PutMessage(id, []byte("m"))
	}
	b.PutEntry("q", 1, u64(1))
	b.PutEntry("r", 1, u64(1))
	b.PutEntry("q", 2, u64(2))
	require.NoError(t, s.Commit(&b))
	require.NoError(t, s.Close())

	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketRefs); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyFormat, binary.BigEndian.AppendUint32(nil, 1))
	}))
	require.NoError(t, db.Close())

	s = open(t, dir, Options{NoSync: true})
	assert.Equal(t, []uint64{1, 2}, messageIDs(t, s))
	b.Reset()
	b.DeleteEntry("q", 1)
	require.NoError(t, s.Commit(&b))
	assert.Equal(t, []uint64{1, 2}, messageIDs(t, s), "message 1 is still referenced by r")
	b.Reset()
	b.DeleteEntry("r", 1)
	require.NoError(t, s.Commit(&b))
	assert.Equal(t, []uint64{2}, messageIDs(t, s))
}

func TestDropEntries(t *testing.T) {
	s := open(t, t.TempDir(), Options{NoSync: true, MaxBatchOps: 10})
	var b Batch
	for i := uint64(1); i <= 55; i++ {
		b.PutMessage(i, []byte("m"))
		b.PutEntry("q", i, u64(i))
	}
	b.PutMessage(100, []byte("kept"))
	b.PutEntry("r", 1, u64(100))
	require.NoError(t, s.Commit(&b))
	commits := s.Stats().Commits
	require.NoError(t, s.DropEntries("q"))
	assert.GreaterOrEqual(t, s.Stats().Commits-commits, uint64(6), "chunks of MaxBatchOps")
	assert.Equal(t, []uint64{100}, messageIDs(t, s))
	queues, err := s.Queues()
	require.NoError(t, err)
	assert.Equal(t, []string{"r"}, queues)
}

func TestConcurrentReadsAndWrites(t *testing.T) {
	s := open(t, t.TempDir(), Options{NoSync: true})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b Batch
			for i := uint64(0); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := s.NextMessageID()
				b.Reset()
				b.PutMessage(id, []byte("body"))
				b.PutEntry(fmt.Sprint(w), i, u64(id))
				if i > 0 {
					b.DeleteEntry(fmt.Sprint(w), i-1)
				}
				assert.NoError(t, s.Commit(&b))
				body, err := s.Message(id)
				assert.NoError(t, err)
				assert.Equal(t, "body", string(body))
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, err := s.Queues()
			assert.NoError(t, err)
			assert.NoError(t, s.Entries("0", func(uint64, []byte) error { return nil }))
		}
	}()
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
}

// Throttle holds a publisher while too many writes wait for the committer,
// and lets it go once the committer takes them.
func TestThrottle(t *testing.T) {
	s := open(t, t.TempDir(), Options{NoSync: true, MaxPendingOps: 10})
	started, release := holdCommits(t, s)
	var first Batch
	first.PutEntry("q", 1, u64(0))
	s.Submit(&first, func(error) {})
	<-started // the committer is stuck in the first commit

	s.Throttle() // nothing pending: no wait
	var big Batch
	for i := uint64(2); i < 20; i++ {
		big.PutEntry("q", i, u64(0))
	}
	done := make(chan error, 1)
	s.Submit(&big, func(err error) { done <- err })
	held := make(chan struct{})
	go func() { s.Throttle(); close(held) }()
	select {
	case <-held:
		t.Fatal("Throttle returned with 18 writes pending and a limit of 10")
	case <-time.After(50 * time.Millisecond):
	}
	release()
	select {
	case <-held:
	case <-time.After(5 * time.Second):
		t.Fatal("Throttle still holds after the committer took the writes")
	}
	require.NoError(t, <-done)

	// Close lets anybody held go, even while a commit is still running.
	s2 := open(t, t.TempDir(), Options{NoSync: true, MaxPendingOps: 10})
	started, release = holdCommits(t, s2)
	s2.Submit(&first, func(error) {})
	<-started
	var again Batch
	for i := uint64(2); i < 20; i++ {
		again.PutEntry("q", i, u64(0))
	}
	s2.Submit(&again, func(error) {})
	held = make(chan struct{})
	go func() { s2.Throttle(); close(held) }()
	closed := make(chan error, 1)
	go func() { closed <- s2.Close() }()
	select {
	case <-held:
	case <-time.After(5 * time.Second):
		t.Fatal("Throttle holds after Close")
	}
	release()
	require.NoError(t, <-closed)
}

// A barrier on its own needs no transaction: there is nothing to fsync.
func TestFlushAloneCommitsNothing(t *testing.T) {
	s := open(t, t.TempDir(), Options{NoSync: true})
	var b Batch
	b.PutEntry("q", 1, u64(0))
	require.NoError(t, s.Commit(&b))
	commits := s.Stats().Commits
	require.NoError(t, s.Flush())
	require.NoError(t, s.WaitCommitted(s.Submitted()))
	assert.Equal(t, commits, s.Stats().Commits)
	assert.Equal(t, s.Submitted(), s.Committed())
}
