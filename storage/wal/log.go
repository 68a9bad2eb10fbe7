package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"sync"
	"sync/atomic"
)

// Options configure a Log.
type Options struct {
	// SegmentSize is the size of each segment file; 0 means 32 MiB.
	SegmentSize int64
	// MaxPending is how many encoded bytes may wait for the writer before
	// Append blocks; 0 means 16 MiB.
	MaxPending int
}

// Errors Append and Checkpoint return.
var (
	ErrClosed   = errors.New("wal: log closed")
	ErrTooLarge = errors.New("wal: record larger than half a segment")
)

// Stats are the log's counters since Open.
type Stats struct {
	Batches         uint64 // group commits
	Syncs           uint64 // fdatasyncs of segment data: one per batch
	Records         uint64 // records made durable (checkpoints included)
	Bytes           uint64 // record bytes written
	Segments        uint64 // live segment files
	SegmentsDeleted uint64
}

// done is a callback waiting for the record that ends at end in the buffer.
type done struct {
	end int
	fn  func(error)
}

// prepared is a spare segment, or why it could not be made.
type prepared struct {
	seg *segment
	err error
}

// Log is the write-ahead log. Its methods are safe for concurrent use.
type Log struct {
	dir  string
	opts Options

	mu sync.Mutex // guards buf, dones, urgent, nextLSN, err, closing
	// wake is signalled when buf gains records or closing is set (the
	// writer waits on it); room when the writer takes buf (appenders
	// waiting for MaxPending wait on it). Both use mu.
	wake, room *sync.Cond
	buf        []byte
	dones      []done
	urgent     bool // buf holds a record someone waits for (not only lazy ones)
	nextLSN    uint64
	err        error // sticky: once a write or sync fails, the log is unusable
	closing    bool

	// Owned by the writer goroutine once Open returns.
	wbuf       []byte
	wdones     []done
	segs       []*segment // live segments, oldest first; the last is cur
	cur        *segment
	off        int64             // next write offset in cur
	needTable  bool              // cur has no checkpoint table yet
	cps        map[uint64]uint64 // durable checkpoint per stream
	durableLSN uint64
	cpChanged  bool          // a checkpoint became durable since the last collect
	spare      chan prepared // the next segment, made by prepare
	table      []byte        // scratch for the checkpoint table

	stats struct {
		batches, syncs, records, bytes, segments, deleted atomic.Uint64
	}

	wg sync.WaitGroup // the writer and prepare goroutines
}

// Append adds a record to the log. done, if not nil, runs on the writer
// goroutine once the record is durable (err nil) or cannot be (err set); it
// must not block. The payload is copied before Append returns.
func (l *Log) Append(r Record, done func(error)) error {
	if r.Kind == KindCheckpoint {
		return fmt.Errorf("wal: kind %d is reserved", KindCheckpoint)
	}
	return l.append(r.Stream, r.Index, r.Kind, r.Payload, done, true)
}

// AppendLazy adds a record that need not be durable at once (raft's commit
// index, which a restart may lose and re-learn): it does not start a write,
// and goes to disk with the next Append's batch or at Close.
func (l *Log) AppendLazy(r Record) error {
	if r.Kind == KindCheckpoint {
		return fmt.Errorf("wal: kind %d is reserved", KindCheckpoint)
	}
	return l.append(r.Stream, r.Index, r.Kind, r.Payload, nil, false)
}

// Checkpoint records that stream no longer needs its records with an index
// below index; recovery then returns only those at or above it. Checkpoint
// with math.MaxUint64 drops the stream. Segments are deleted once no stream
// needs them, after the checkpoint is durable.
func (l *Log) Checkpoint(stream, index uint64, done func(error)) error {
	return l.append(stream, index, KindCheckpoint, nil, done, true)
}

// CheckpointLazy is Checkpoint without a callback that does not start a
// write: it goes to disk with the next Append's batch or at Close, as
// AppendLazy does. A checkpoint that a crash loses only means recovery
// returns records the stream had already consumed.
func (l *Log) CheckpointLazy(stream, index uint64) error {
	return l.append(stream, index, KindCheckpoint, nil, nil, false)
}

// Drop forgets a stream: Checkpoint at math.MaxUint64.
func (l *Log) Drop(stream uint64, done func(error)) error {
	return l.Checkpoint(stream, math.MaxUint64, done)
}

func (l *Log) append(stream, index uint64, kind uint8, payload []byte, fn func(error), urgent bool) error {
	if int64(recordSize(len(payload))) > l.opts.SegmentSize/2 {
		return ErrTooLarge
	}
	l.mu.Lock()
	for l.err == nil && !l.closing && len(l.buf) >= l.opts.MaxPending {
		l.room.Wait()
	}
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		return err
	}
	if l.closing {
		l.mu.Unlock()
		return ErrClosed
	}
	var lsn uint64
	if kind != KindCheckpoint {
		lsn = l.nextLSN
		l.nextLSN++
	}
	wake := urgent && !l.urgent
	l.urgent = l.urgent || urgent
	l.buf = appendRecord(l.buf, lsn, stream, index, kind, payload)
	if fn != nil {
		l.dones = append(l.dones, done{end: len(l.buf), fn: fn})
	}
	l.mu.Unlock()
	if wake {
		l.wake.Signal()
	}
	return nil
}

// Stats returns the log's counters.
func (l *Log) Stats() Stats {
	return Stats{
		Batches:         l.stats.batches.Load(),
		Syncs:           l.stats.syncs.Load(),
		Records:         l.stats.records.Load(),
		Bytes:           l.stats.bytes.Load(),
		Segments:        l.stats.segments.Load(),
		SegmentsDeleted: l.stats.deleted.Load(),
	}
}

// Close writes what was appended, waits for it to be durable and closes the
// files. Appends after Close fail with ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closing = true
	l.mu.Unlock()
	return l.shut()
}

// Abandon closes the log as a crash would, for crash tests: what was
// appended but not yet taken by the writer (lazy records, and appends since
// its last batch) is discarded rather than written, and their callbacks get
// ErrClosed; a batch already being written completes. Open then recovers
// exactly what was made durable.
func (l *Log) Abandon() error {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closing = true
	pending := l.dones
	l.buf, l.dones, l.urgent = l.buf[:0], nil, false
	l.mu.Unlock()
	failDones(pending, ErrClosed)
	return l.shut()
}

// shut stops the goroutines once closing is set and closes the files.
func (l *Log) shut() error {
	l.wake.Broadcast()
	l.room.Broadcast()
	l.wg.Wait()
	// The spare segment stays on disk: Open reuses an empty last segment.
	select {
	case p := <-l.spare:
		if p.seg != nil {
			p.seg.f.Close()
		}
	default:
	}
	var err error
	for _, s := range l.segs {
		if s.f != nil {
			if cerr := s.f.Close(); err == nil {
				err = cerr
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	return err
}

// run is the writer goroutine.
func (l *Log) run() {
	defer l.wg.Done()
	for {
		l.mu.Lock()
		for !l.urgent && !l.closing && l.err == nil {
			l.wake.Wait()
		}
		if len(l.buf) == 0 || l.err != nil {
			l.mu.Unlock()
			return
		}
		l.buf, l.wbuf = l.wbuf[:0], l.buf
		l.dones, l.wdones = l.wdones[:0], l.dones
		l.urgent = false
		l.mu.Unlock()
		l.room.Broadcast()

		err := l.commit(l.wbuf, l.wdones)
		if err != nil {
			l.fail(err)
			return
		}
	}
}

// fail makes err sticky and fails every waiting callback.
func (l *Log) fail(err error) {
	l.mu.Lock()
	if l.err == nil {
		l.err = err
	}
	pending := l.dones
	l.dones = nil
	l.buf = nil
	l.mu.Unlock()
	l.room.Broadcast()
	for _, d := range pending {
		d.fn(err)
	}
}

// commit writes b in as few batches as segments allow, each made durable
// with one fdatasync before its callbacks run.
func (l *Log) commit(b []byte, dones []done) error {
	pos := 0
	for pos < len(b) {
		avail := int(l.opts.SegmentSize - l.off)
		if l.needTable {
			avail -= l.tableSize()
		}
		end := pos
		for end < len(b) {
			size := recordSize(int(binary.LittleEndian.Uint32(b[end+4:])))
			if end+size-pos > avail {
				break
			}
			end += size
		}
		if end == pos {
			if l.off == segHeaderSize && l.needTable {
				// Even an empty segment cannot hold the checkpoint table and
				// this record: rotating again would not help.
				err := fmt.Errorf("wal: record of %d bytes does not fit a %d-byte segment after a %d-byte checkpoint table", recordSize(int(binary.LittleEndian.Uint32(b[pos+4:]))), l.opts.SegmentSize, l.tableSize())
				failDones(dones, err)
				return err
			}
			if err := l.rotate(); err != nil {
				failDones(dones, err)
				return err
			}
			continue
		}
		if err := l.writeBatch(b[pos:end]); err != nil {
			failDones(dones, err)
			return err
		}
		pos = end
		n := 0
		for n < len(dones) && dones[n].end <= pos {
			dones[n].fn(nil)
			n++
		}
		dones = dones[n:]
	}
	if l.cpChanged {
		l.cpChanged = false
		l.collect()
	}
	return nil
}

func failDones(dones []done, err error) {
	for _, d := range dones {
		d.fn(err)
	}
}

// tableSize is the size of the checkpoint table a new segment starts with.
func (l *Log) tableSize() int { return len(l.cps) * recordSize(0) }

// writeBatch seals and writes one batch (after the checkpoint table, if cur
// needs one) and syncs it once.
func (l *Log) writeBatch(b []byte) error {
	synced := l.durableLSN
	last := synced
	for o := 0; o < len(b); {
		n := int(binary.LittleEndian.Uint32(b[o+4:]))
		seal(b[o:], synced)
		if lsn := binary.LittleEndian.Uint64(b[o+8:]); lsn != 0 {
			last = lsn
		}
		o += recordSize(n)
	}
	off := l.off
	if l.needTable {
		l.table = l.table[:0]
		streams := make([]uint64, 0, len(l.cps))
		for s := range l.cps {
			streams = append(streams, s)
		}
		sort.Slice(streams, func(i, j int) bool { return streams[i] < streams[j] })
		for _, s := range streams {
			o := len(l.table)
			l.table = appendRecord(l.table, 0, s, l.cps[s], KindCheckpoint, nil)
			seal(l.table[o:], synced)
		}
		if len(l.table) > 0 {
			if _, err := l.cur.f.WriteAt(l.table, off); err != nil {
				return fmt.Errorf("wal: writing %s: %w", l.cur.path, err)
			}
			off += int64(len(l.table))
		}
	}
	if _, err := l.cur.f.WriteAt(b, off); err != nil {
		return fmt.Errorf("wal: writing %s: %w", l.cur.path, err)
	}
	if err := datasync(l.cur.f); err != nil {
		return fmt.Errorf("wal: syncing %s: %w", l.cur.path, err)
	}
	l.needTable = false
	l.off = off + int64(len(b))
	l.durableLSN = last
	l.stats.batches.Add(1)
	l.stats.syncs.Add(1)
	l.stats.bytes.Add(uint64(len(b)))
	var records uint64
	for o := 0; o < len(b); {
		h, _, size, _ := parseHeaderUnchecked(b, o)
		records++
		if h.kind == KindCheckpoint {
			if h.index == 0 {
				delete(l.cps, h.stream)
			} else {
				l.cps[h.stream] = h.index
			}
			l.cpChanged = true
		} else if max, ok := l.cur.streams[h.stream]; !ok || h.index > max {
			l.cur.streams[h.stream] = h.index
		}
		o += size
	}
	l.stats.records.Add(records)
	return nil
}

// parseHeaderUnchecked decodes a header the writer itself just sealed.
func parseHeaderUnchecked(b []byte, o int) (h recHeader, payload []byte, size int, ok bool) {
	r := b[o:]
	h.length = binary.LittleEndian.Uint32(r[4:])
	h.lsn = binary.LittleEndian.Uint64(r[8:])
	h.stream = binary.LittleEndian.Uint64(r[24:])
	h.index = binary.LittleEndian.Uint64(r[32:])
	h.kind = r[40]
	return h, nil, recordSize(int(h.length)), true
}

// rotate moves to the spare segment and starts preparing the next one.
func (l *Log) rotate() error {
	p := <-l.spare
	if p.err != nil {
		return p.err
	}
	// The old segment is complete and durable: nothing writes to it again.
	if err := l.cur.f.Close(); err != nil {
		return fmt.Errorf("wal: closing %s: %w", l.cur.path, err)
	}
	l.cur.f = nil
	l.cur = p.seg
	l.segs = append(l.segs, p.seg)
	l.stats.segments.Add(1)
	l.off = segHeaderSize
	l.needTable = true
	l.startPrepare(p.seg.seq + 1)
	return nil
}

// startPrepare makes segment seq in the background, so that rotating does
// not wait for a segment to be zero-filled.
func (l *Log) startPrepare(seq uint64) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		s, err := createSegment(l.dir, seq, l.opts.SegmentSize)
		l.spare <- prepared{seg: s, err: err}
	}()
}

// collect deletes the sealed segments no stream needs any more.
func (l *Log) collect() {
	kept := l.segs[:0]
	for _, s := range l.segs {
		if s != l.cur && !l.needed(s) {
			if err := os.Remove(s.path); err == nil || os.IsNotExist(err) {
				l.stats.deleted.Add(1)
				l.stats.segments.Add(^uint64(0))
				continue
			}
		}
		kept = append(kept, s)
	}
	for i := len(kept); i < len(l.segs); i++ {
		l.segs[i] = nil
	}
	l.segs = kept
	// A dropped stream leaves the checkpoint table once no segment holds
	// its records: there is nothing left for the checkpoint to hide.
	for stream, cp := range l.cps {
		if cp != math.MaxUint64 {
			continue
		}
		held := false
		for _, s := range l.segs {
			if _, ok := s.streams[stream]; ok {
				held = true
				break
			}
		}
		if !held {
			delete(l.cps, stream)
		}
	}
}

// needed reports whether some stream still needs a record in s.
func (l *Log) needed(s *segment) bool {
	for stream, max := range s.streams {
		if cp, ok := l.cps[stream]; !ok || max >= cp {
			return true
		}
	}
	return false
}
