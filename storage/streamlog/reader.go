package streamlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/warrenmq/warren/storage/wal"
)

const readBuf = 64 << 10

// Entry is one entry as a Reader returns it.
type Entry struct {
	Offset     uint64
	Timestamp  int64 // the chunk's, Unix milliseconds
	ChunkStart bool
	// Payload is valid until the Reader's next call.
	Payload []byte
}

// Reader reads a log from an offset onwards, one segment file at a time. A
// Reader is used by one goroutine.
type Reader struct {
	l    *Log
	seg  *segment
	pos  int64  // file position of the next record
	next uint64 // offset of the next entry to return

	buf      []byte
	bufStart int64 // file position of buf[0]
	bufLen   int
}

// NewReader returns a reader whose first entry is offset's (or the first
// kept one if retention removed offset). An offset at or past Next waits for
// that entry.
func (l *Log) NewReader(offset uint64) *Reader {
	r := &Reader{l: l, buf: make([]byte, readBuf)}
	r.seek(offset)
	return r
}

// Offset is the offset of the entry Next returns next.
func (r *Reader) Offset() uint64 { return r.next }

// seek positions r at offset (or First if that is later).
func (r *Reader) seek(offset uint64) {
	if f := r.l.First(); offset < f {
		offset = f
	}
	r.seg = r.l.segmentAt(offset)
	r.next = offset
	r.pos = segHeaderSize
	r.bufLen = 0
	r.seg.idxMu.RLock()
	idx := r.seg.index
	i := sort.Search(len(idx), func(i int) bool { return idx[i].offset > offset })
	if i > 0 {
		r.pos = idx[i-1].pos
	}
	r.seg.idxMu.RUnlock()
}

// Next returns the next durable entry, ok false when the reader is at the
// end of what is durable.
func (r *Reader) Next() (e Entry, ok bool, err error) {
	for {
		if r.next >= r.l.durable.Load() {
			return e, false, nil
		}
		if r.next < r.l.First() {
			r.seek(r.next)
		}
		if r.pos >= r.seg.size.Load() {
			nxt := r.l.segmentAfter(r.seg)
			if nxt == nil {
				return e, false, nil
			}
			r.seg, r.pos, r.bufLen = nxt, segHeaderSize, 0
			continue
		}
		h, payload, size, err := r.read()
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				r.seek(r.next) // retention removed the segment
				continue
			}
			return e, false, err
		}
		r.pos += int64(size)
		if h.Index < r.next {
			continue // between an index point and the offset sought
		}
		r.next = h.Index + 1
		return Entry{Offset: h.Index, Timestamp: int64(h.Stream), ChunkStart: h.Kind == kindChunkStart, Payload: payload}, true, nil
	}
}

// read decodes the record at r.pos, filling the buffer as needed.
func (r *Reader) read() (wal.RecordHeader, []byte, int, error) {
	for attempt := 0; ; attempt++ {
		rel := int(r.pos - r.bufStart)
		if r.bufLen > 0 && rel >= 0 && rel+wal.RecordHeaderSize <= r.bufLen {
			n := int(binary.LittleEndian.Uint32(r.buf[rel+4:]))
			if rel+wal.RecordHeaderSize+n <= r.bufLen {
				h, payload, size, ok := wal.ParseRecord(r.buf[:r.bufLen], rel)
				if !ok {
					return h, nil, 0, fmt.Errorf("streamlog: %s: bad record at %d", r.seg.path, r.pos)
				}
				return h, payload, size, nil
			}
			if r.pos+int64(wal.RecordSize(n)) > r.seg.size.Load()+7 {
				return wal.RecordHeader{}, nil, 0, fmt.Errorf("streamlog: %s: record at %d runs past the end", r.seg.path, r.pos)
			}
			if need := wal.RecordSize(n); need > len(r.buf) {
				r.buf = make([]byte, need)
			}
		}
		if attempt == 2 {
			return wal.RecordHeader{}, nil, 0, fmt.Errorf("streamlog: %s: short record at %d", r.seg.path, r.pos)
		}
		limit := r.seg.size.Load() - r.pos
		want := int64(len(r.buf))
		if limit < want {
			want = limit
		}
		n, err := r.seg.f.ReadAt(r.buf[:want], r.pos)
		if err != nil && n < int(want) {
			return wal.RecordHeader{}, nil, 0, err
		}
		r.bufStart, r.bufLen = r.pos, n
	}
}

// OffsetAt returns the first offset of the first chunk whose timestamp is
// at or after ts (Unix milliseconds), or Next if there is none: where a
// consumer asking for a timestamp starts.
func (l *Log) OffsetAt(ts int64) (uint64, error) {
	l.segMu.RLock()
	segs := append([]*segment(nil), l.segs...)
	l.segMu.RUnlock()
	var s *segment
	for _, x := range segs {
		if x.lastTs.Load() >= ts && x.end.Load() > x.first {
			s = x
			break
		}
	}
	if s == nil {
		return l.Next(), nil
	}
	start := s.first
	s.idxMu.RLock()
	idx := s.index
	i := sort.Search(len(idx), func(i int) bool { return idx[i].ts >= ts })
	if i > 0 {
		start = idx[i-1].offset
	}
	s.idxMu.RUnlock()
	r := l.NewReader(start)
	for {
		e, ok, err := r.Next()
		if err != nil {
			return 0, err
		}
		if !ok {
			return l.Next(), nil
		}
		if e.ChunkStart && e.Timestamp >= ts {
			return e.Offset, nil
		}
	}
}
