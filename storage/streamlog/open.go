package streamlog

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warrenmq/warren/storage/wal"
)

// Open recovers the log in dir (created if missing) and starts its writer.
// Cut, if not empty, says where a torn tail was cut.
func Open(dir string, opts Options) (l *Log, cut string, err error) {
	if opts.MaxSegmentBytes <= 0 {
		opts.MaxSegmentBytes = DefaultMaxSegmentBytes
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 16 << 20
	}
	l = &Log{dir: dir, opts: opts, now: opts.Now}
	if l.now == nil {
		l.now = time.Now
	}
	l.wake = sync.NewCond(&l.mu)
	l.room = sync.NewCond(&l.mu)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	firsts, err := listSegments(dir)
	if err != nil {
		return nil, "", err
	}
	lg := l
	defer func() {
		if err != nil {
			for _, s := range lg.segs {
				s.f.Close()
			}
		}
	}()
	var next, lastChunk uint64
	for i, first := range firsts {
		last := i == len(firsts)-1
		if i > 0 && first != next {
			return nil, "", fmt.Errorf("streamlog: segment %s starts at offset %d but the one before ends at %d", filepath.Base(segName(dir, first)), first, next)
		}
		s, lc, c, err := recoverSegment(dir, first, last)
		if err != nil {
			return nil, "", err
		}
		if c != "" {
			cut = c
		}
		if s.end.Load() > s.first {
			lastChunk = lc
		}
		next = s.end.Load()
		l.segs = append(l.segs, s)
	}
	if len(l.segs) == 0 {
		s, err := createSegment(dir, 0)
		if err != nil {
			return nil, "", err
		}
		l.segs = append(l.segs, s)
	}
	cur := l.segs[len(l.segs)-1]
	l.alloc = cur.size.Load()
	l.next = next
	l.durable.Store(next)
	l.lastChunk.Store(lastChunk)
	l.first.Store(l.segs[0].first)
	l.wg.Add(1)
	go l.run()
	return l, cut, nil
}

// listSegments returns the first offsets of dir's segments in order.
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var firsts []uint64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, segExt) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(name, segExt), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("streamlog: unexpected file %s in %s", name, dir)
		}
		firsts = append(firsts, n)
	}
	sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
	return firsts, nil
}

// recoverSegment scans one segment, checking every record, and rebuilds its
// index. The last segment's torn tail is cut; a bad record anywhere else, or
// one that durable records follow, is an error.
func recoverSegment(dir string, first uint64, last bool) (s *segment, lastChunk uint64, cut string, err error) {
	path := segName(dir, first)
	name := filepath.Base(path)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, 0, "", err
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, "", err
	}
	fileSize := fi.Size()
	hdr := make([]byte, segHeaderSize)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		if last {
			// A crash while the segment was being created: nothing was
			// written to it, so start it again.
			f.Close()
			s, err := createSegment(dir, first)
			return s, 0, "", err
		}
		return nil, 0, "", fmt.Errorf("streamlog: segment %s: %w", name, err)
	}
	if hf, ok := parseSegHeader(hdr); !ok || hf != first {
		if last && allZero(hdr) {
			f.Close()
			s, err := createSegment(dir, first)
			return s, 0, "", err
		}
		return nil, 0, "", fmt.Errorf("streamlog: segment %s: bad header", name)
	}
	s = &segment{first: first, path: path, f: f}
	r := &Reader{l: nil, seg: s, buf: make([]byte, readBuf)}
	s.size.Store(fileSize) // reads may go anywhere in the file while scanning
	pos := int64(segHeaderSize)
	next := first
	for pos < fileSize {
		r.pos = pos
		h, _, size, rerr := r.read()
		if rerr != nil || h.Index != next || h.LSN != next+1 {
			break
		}
		if h.Kind == kindChunkStart {
			lastChunk = h.Index
			s.addIndex(indexEntry{offset: h.Index, ts: int64(h.Stream), pos: pos})
			s.lastTs.Store(int64(h.Stream))
		}
		next++
		pos += int64(size)
	}
	if pos > fileSize {
		pos = fileSize // the last record's padding was cut off
	}
	s.end.Store(next)
	if pos < fileSize {
		if !last {
			return nil, 0, "", fmt.Errorf("streamlog: segment %s: bad record at offset %d in a sealed segment", name, pos)
		}
		clean, proof, err := tailAfter(f, pos, fileSize, next)
		if err != nil {
			return nil, 0, "", err
		}
		if proof != "" {
			return nil, 0, "", fmt.Errorf("streamlog: segment %s: bad record at offset %d followed by a durable record (%s): refusing to cut durable data", name, pos, proof)
		}
		if err := f.Truncate(pos); err != nil {
			return nil, 0, "", fmt.Errorf("streamlog: cutting %s: %w", name, err)
		}
		if err := f.Sync(); err != nil {
			return nil, 0, "", fmt.Errorf("streamlog: cutting %s: %w", name, err)
		}
		if !clean {
			cut = fmt.Sprintf("segment %s cut at byte %d, offset %d", name, pos, next)
		}
	}
	s.size.Store(pos)
	return s, lastChunk, cut, nil
}

// tailAfter looks at what follows the valid records of the last segment:
// clean if it is only zeros (preallocation); proof names a valid record
// whose synced count says more than next entries had been made durable.
func tailAfter(f *os.File, from, size int64, next uint64) (clean bool, proof string, err error) {
	clean = true
	buf := make([]byte, 1<<20)
	hdr := make([]byte, wal.RecordHeaderSize)
	start := (from + 7) &^ 7
	for base := start; base < size; base += int64(len(buf)) {
		n, rerr := f.ReadAt(buf, base)
		if rerr != nil && rerr != io.EOF {
			return false, "", rerr
		}
		for o := 0; o+8 <= n; o += 8 {
			if binary.LittleEndian.Uint64(buf[o:]) == 0 {
				continue
			}
			clean = false
			p := base + int64(o)
			if _, err := f.ReadAt(hdr, p); err != nil {
				continue
			}
			length := int64(binary.LittleEndian.Uint32(hdr[4:]))
			if p+int64(wal.RecordHeaderSize)+length > size {
				continue
			}
			rec := make([]byte, wal.RecordHeaderSize+int(length))
			if _, err := f.ReadAt(rec, p); err != nil {
				continue
			}
			if h, _, _, ok := wal.ParseRecord(rec, 0); ok && h.Synced > next {
				return false, fmt.Sprintf("offset %d at byte %d", h.Index, p), nil
			}
		}
		if n < len(buf) {
			if !allZero(buf[n&^7 : n]) {
				clean = false // a torn word at the very end
			}
			break
		}
	}
	return clean, "", nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
