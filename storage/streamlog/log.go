package streamlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/storage/wal"
)

const (
	segMagic      = "WRNSTR01"
	segHeaderSize = 32
	segExt        = ".seg"

	kindEntry      uint8 = 0
	kindChunkStart uint8 = 1

	// allocStep is how far ahead the active segment is zero-filled.
	allocStep = 4 << 20
	// indexEvery is the file distance between index entries.
	indexEvery = 64 << 10

	// DefaultMaxSegmentBytes is RabbitMQ's x-stream-max-segment-size-bytes
	// default.
	DefaultMaxSegmentBytes = 500_000_000
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors the log returns.
var (
	ErrClosed   = errors.New("streamlog: log closed")
	ErrTooLarge = errors.New("streamlog: entry larger than 4 GiB")
)

// Options configure a Log.
type Options struct {
	// MaxSegmentBytes rolls the active segment over once it holds this many
	// bytes; 0 means DefaultMaxSegmentBytes.
	MaxSegmentBytes int64
	// MaxBytes removes the oldest segments while the stream is larger
	// (x-max-length-bytes); 0 means no limit.
	MaxBytes int64
	// MaxAge removes segments whose newest entry is older (x-max-age); 0
	// means no limit.
	MaxAge time.Duration
	// MaxPending is how many encoded bytes may wait for the writer before
	// Append blocks; 0 means 16 MiB.
	MaxPending int
	// OnDurable, if set, runs on the writer goroutine after each commit
	// with the offset after the last durable entry. It must not block.
	OnDurable func(next uint64)
	// Now is the clock (tests set it); nil means time.Now.
	Now func() time.Time
}

// Stats describe the log.
type Stats struct {
	First    uint64 // first offset retention kept
	Next     uint64 // offset the next durable entry gets
	Segments int
	Bytes    int64 // bytes of entries in the segment files
	Commits  uint64
	Syncs    uint64
}

// done is a callback waiting for the entry that ends at end in the buffer.
type done struct {
	end int
	fn  func(error)
}

// indexEntry is one point of a segment's sparse index: a chunk start.
type indexEntry struct {
	offset uint64
	ts     int64
	pos    int64
}

// segment is one file of the log.
type segment struct {
	first uint64
	path  string
	f     *os.File // closed when retention removes the segment
	// size is where valid entries end; readers read below it.
	size atomic.Int64
	// end is the offset after the segment's last durable entry.
	end atomic.Uint64
	// lastTs is the newest chunk timestamp in the segment (ms).
	lastTs atomic.Int64

	idxMu sync.RWMutex // guards index
	index []indexEntry
}

func (s *segment) addIndex(e indexEntry) {
	s.idxMu.Lock()
	if n := len(s.index); n == 0 || e.pos-s.index[n-1].pos >= indexEvery {
		s.index = append(s.index, e)
	}
	s.idxMu.Unlock()
}

// Log is one stream's segment log. Its methods are safe for concurrent use.
type Log struct {
	dir  string
	opts Options
	now  func() time.Time

	mu sync.Mutex // guards buf, dones, next, err, closing
	// wake is signalled when buf gains entries or closing is set; room when
	// the writer takes buf. Both use mu.
	wake, room *sync.Cond
	buf        []byte
	dones      []done
	next       uint64 // offset the next Append gets
	err        error  // sticky: once a write fails the log is unusable
	closing    bool

	segMu sync.RWMutex // guards segs (the writer appends, retention removes from the head)
	segs  []*segment   // oldest first; the last is the active one

	durable   atomic.Uint64 // entries below this offset are durable and readable
	lastChunk atomic.Uint64 // offset of the newest durable chunk's first entry
	first     atomic.Uint64 // first offset retention kept

	// Owned by the writer goroutine.
	wbuf   []byte
	wdones []done
	alloc  int64 // bytes of the active segment zero-filled so far

	commits, syncs atomic.Uint64

	wg sync.WaitGroup // the writer goroutine
}

// Append adds an entry and returns its offset. done, if not nil, runs on
// the writer goroutine once the entry is durable (err nil) or cannot be; it
// must not block. The payload is copied before Append returns.
func (l *Log) Append(payload []byte, fn func(error)) (uint64, error) {
	if uint64(len(payload)) > 1<<32-1-wal.RecordHeaderSize {
		return 0, ErrTooLarge
	}
	l.mu.Lock()
	for l.err == nil && !l.closing && len(l.buf) >= l.opts.MaxPending {
		l.room.Wait()
	}
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		return 0, err
	}
	if l.closing {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	off := l.next
	l.next++
	wake := len(l.buf) == 0
	l.buf = wal.AppendRecord(l.buf, off+1, 0, off, kindEntry, payload)
	if fn != nil {
		l.dones = append(l.dones, done{end: len(l.buf), fn: fn})
	}
	l.mu.Unlock()
	if wake {
		l.wake.Signal()
	}
	return off, nil
}

// First is the first offset retention kept (Next when the stream is empty).
func (l *Log) First() uint64 { return l.first.Load() }

// Next is the offset after the last durable entry: where a consumer with
// `next` starts.
func (l *Log) Next() uint64 { return l.durable.Load() }

// LastChunk is the first offset of the newest chunk (`last`), or Next when
// the stream is empty.
func (l *Log) LastChunk() uint64 {
	n := l.durable.Load()
	if c := l.lastChunk.Load(); c < n && c >= l.first.Load() {
		return c
	}
	return n
}

// Stats returns the log's figures.
func (l *Log) Stats() Stats {
	st := Stats{First: l.first.Load(), Next: l.durable.Load(), Commits: l.commits.Load(), Syncs: l.syncs.Load()}
	l.segMu.RLock()
	st.Segments = len(l.segs)
	for _, s := range l.segs {
		st.Bytes += s.size.Load() - segHeaderSize
	}
	l.segMu.RUnlock()
	return st
}

// SetRetention changes MaxBytes and MaxAge (a policy change); they apply at
// the next roll-over or Retain.
func (l *Log) SetRetention(maxBytes int64, maxAge time.Duration) {
	l.segMu.Lock()
	l.opts.MaxBytes, l.opts.MaxAge = maxBytes, maxAge
	l.segMu.Unlock()
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
	l.wake.Broadcast()
	l.room.Broadcast()
	l.wg.Wait()
	l.segMu.Lock()
	var err error
	for _, s := range l.segs {
		if cerr := s.f.Close(); err == nil {
			err = cerr
		}
	}
	l.segMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	return err
}

// Delete closes the log and removes its directory.
func (l *Log) Delete() error {
	if err := l.Close(); err != nil && !errors.Is(err, ErrClosed) {
		_ = os.RemoveAll(l.dir)
		return err
	}
	return os.RemoveAll(l.dir)
}

// run is the writer goroutine.
func (l *Log) run() {
	defer l.wg.Done()
	for {
		l.mu.Lock()
		for len(l.buf) == 0 && !l.closing && l.err == nil {
			l.wake.Wait()
		}
		if len(l.buf) == 0 || l.err != nil {
			l.mu.Unlock()
			return
		}
		l.buf, l.wbuf = l.wbuf[:0], l.buf
		l.dones, l.wdones = l.wdones[:0], l.dones
		l.mu.Unlock()
		l.room.Broadcast()

		if err := l.commit(l.wbuf); err != nil {
			for _, d := range l.wdones {
				d.fn(err)
			}
			l.fail(err)
			return
		}
		if l.opts.OnDurable != nil {
			l.opts.OnDurable(l.durable.Load())
		}
		for _, d := range l.wdones {
			d.fn(nil)
		}
		for i := range l.wdones {
			l.wdones[i] = done{}
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

func (l *Log) active() *segment {
	l.segMu.RLock()
	s := l.segs[len(l.segs)-1]
	l.segMu.RUnlock()
	return s
}

// commit writes b as one chunk and makes it durable with one fdatasync.
func (l *Log) commit(b []byte) error {
	cur := l.active()
	if cur.size.Load() >= l.opts.MaxSegmentBytes && cur.end.Load() > cur.first {
		var err error
		if cur, err = l.roll(cur); err != nil {
			return err
		}
	}
	ts := l.now().UnixMilli()
	synced := l.durable.Load()
	firstOff := binary.LittleEndian.Uint64(b[32:])
	var lastOff uint64
	for o := 0; o < len(b); {
		n := int(binary.LittleEndian.Uint32(b[o+4:]))
		binary.LittleEndian.PutUint64(b[o+24:], uint64(ts))
		if o == 0 {
			b[o+40] = kindChunkStart
		}
		lastOff = binary.LittleEndian.Uint64(b[o+32:])
		wal.SealRecord(b[o:], synced)
		o += wal.RecordSize(n)
	}
	off := cur.size.Load()
	if need := off + int64(len(b)); need > l.alloc {
		if err := l.extend(cur, need); err != nil {
			return err
		}
	}
	if _, err := cur.f.WriteAt(b, off); err != nil {
		return fmt.Errorf("streamlog: writing %s: %w", cur.path, err)
	}
	if err := wal.Datasync(cur.f); err != nil {
		return fmt.Errorf("streamlog: syncing %s: %w", cur.path, err)
	}
	l.commits.Add(1)
	l.syncs.Add(1)
	cur.addIndex(indexEntry{offset: firstOff, ts: ts, pos: off})
	cur.lastTs.Store(ts)
	cur.end.Store(lastOff + 1)
	cur.size.Store(off + int64(len(b)))
	l.lastChunk.Store(firstOff)
	l.durable.Store(lastOff + 1)
	return nil
}

// extend zero-fills the active segment past need, so that commits overwrite
// allocated blocks.
func (l *Log) extend(cur *segment, need int64) error {
	target := (need + allocStep - 1) / allocStep * allocStep
	for l.alloc < target {
		n := int64(len(zeros))
		if target-l.alloc < n {
			n = target - l.alloc
		}
		if _, err := cur.f.WriteAt(zeros[:n], l.alloc); err != nil {
			return fmt.Errorf("streamlog: extending %s: %w", cur.path, err)
		}
		l.alloc += n
	}
	return nil
}

var zeros = make([]byte, 1<<20)

// roll seals cur (cut to its entries and synced) and starts a new segment
// at the next offset, then applies retention.
func (l *Log) roll(cur *segment) (*segment, error) {
	if err := cur.f.Truncate(cur.size.Load()); err != nil {
		return nil, fmt.Errorf("streamlog: sealing %s: %w", cur.path, err)
	}
	if err := cur.f.Sync(); err != nil {
		return nil, fmt.Errorf("streamlog: sealing %s: %w", cur.path, err)
	}
	s, err := createSegment(l.dir, cur.end.Load())
	if err != nil {
		return nil, err
	}
	l.alloc = segHeaderSize
	l.segMu.Lock()
	l.segs = append(l.segs, s)
	l.segMu.Unlock()
	l.Retain()
	return s, nil
}

// Retain removes the oldest segments that MaxBytes or MaxAge no longer
// keep; never the active one.
func (l *Log) Retain() {
	now := l.now().UnixMilli()
	l.segMu.Lock()
	var total int64
	for _, s := range l.segs {
		total += s.size.Load() - segHeaderSize
	}
	drop := 0
	for drop < len(l.segs)-1 {
		s := l.segs[drop]
		size := s.size.Load() - segHeaderSize
		bySize := l.opts.MaxBytes > 0 && total > l.opts.MaxBytes
		byAge := l.opts.MaxAge > 0 && s.lastTs.Load() < now-l.opts.MaxAge.Milliseconds()
		if !bySize && !byAge {
			break
		}
		total -= size
		drop++
	}
	removed := append([]*segment(nil), l.segs[:drop]...)
	l.segs = append(l.segs[:0], l.segs[drop:]...)
	if len(removed) > 0 {
		l.first.Store(l.segs[0].first)
	}
	l.segMu.Unlock()
	for _, s := range removed {
		// A reader still in s sees ErrClosed on its next ReadAt and moves
		// to First.
		s.f.Close()
		os.Remove(s.path)
	}
}

// segHeader encodes a segment's header.
func segHeader(first uint64) []byte {
	b := make([]byte, segHeaderSize)
	copy(b, segMagic)
	binary.LittleEndian.PutUint64(b[8:], first)
	binary.LittleEndian.PutUint32(b[16:], crc32.Checksum(b[:16], castagnoli))
	return b
}

func parseSegHeader(b []byte) (uint64, bool) {
	if len(b) < segHeaderSize || string(b[:8]) != segMagic {
		return 0, false
	}
	if crc32.Checksum(b[:16], castagnoli) != binary.LittleEndian.Uint32(b[16:]) {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b[8:]), true
}

func segName(dir string, first uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", first, segExt))
}

// createSegment writes a new segment's header durably (file and directory
// entry) and returns it open.
func createSegment(dir string, first uint64) (*segment, error) {
	path := segName(dir, first)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(segHeader(first)); err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = wal.SyncDir(dir)
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("streamlog: creating %s: %w", path, err)
	}
	s := &segment{first: first, path: path, f: f}
	s.size.Store(segHeaderSize)
	s.end.Store(first)
	return s, nil
}

// segmentAt returns the segment holding offset (the first one if offset is
// before it, nil if offset is at or past the end).
func (l *Log) segmentAt(offset uint64) *segment {
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].first > offset })
	if i == 0 {
		return l.segs[0]
	}
	return l.segs[i-1]
}

// segmentAfter returns the segment following s, or nil.
func (l *Log) segmentAfter(s *segment) *segment {
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	for i, x := range l.segs {
		if x.first > s.first {
			return l.segs[i]
		}
	}
	return nil
}
