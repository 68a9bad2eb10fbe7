package wal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Recovery is what Open found in the log.
type Recovery struct {
	// Streams holds each stream that has a checkpoint or records (dropped
	// streams are left out).
	Streams map[uint64]*Stream
	// Cut describes the torn or corrupt tail Open cut, or is empty.
	Cut string
}

// Stream is one stream's part of the log.
type Stream struct {
	// Checkpoint is the stream's last checkpoint (0 if none).
	Checkpoint uint64
	// Records are the stream's records with an index at or above
	// Checkpoint, in the order they were appended. A stream that rewrote
	// an index (raft replacing a follower's uncommitted entries) sees both
	// the old and the new record, in that order.
	Records []Record
}

// found is a record as the scan met it, before checkpoints filter it.
type found struct {
	Record
	lsn uint64
}

// Open recovers the log in dir (created if missing) and starts its writer.
// A torn or corrupt tail is cut at the last valid record; a bad record that
// valid, durable records follow is an error, and the log is left untouched.
func Open(dir string, opts Options) (*Log, *Recovery, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = 32 << 20
	}
	if opts.SegmentSize < 4096 {
		return nil, nil, fmt.Errorf("wal: segment size %d below 4096", opts.SegmentSize)
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 16 << 20
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	seqs, err := listSegments(dir)
	if err != nil {
		return nil, nil, err
	}
	l := &Log{dir: dir, opts: opts, cps: make(map[uint64]uint64), spare: make(chan prepared, 1)}
	l.wake = sync.NewCond(&l.mu)
	l.room = sync.NewCond(&l.mu)

	rec := &Recovery{Streams: make(map[uint64]*Stream)}
	var all []found
	var lastLSN uint64
	var prevSeq uint64
	prevHadRecords := false
	lastEmpty := false
	for _, seq := range seqs {
		path := segName(dir, seq)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, err
		}
		name := filepath.Base(path)
		if hseq, ok := parseSegHeader(b); !ok || hseq != seq {
			return nil, nil, fmt.Errorf("wal: segment %s: bad header", name)
		}
		seg := &segment{seq: seq, path: path, streams: make(map[uint64]uint64)}
		o := segHeaderSize
		var lastInSeg uint64
		records := 0
		for {
			h, payload, size, ok := parseRecord(b, o)
			if !ok {
				break
			}
			if records == 0 && prevHadRecords && seq == prevSeq+1 && h.synced > lastLSN {
				return nil, nil, fmt.Errorf("wal: segment %s starts after lsn %d but the log before it ends at lsn %d: durable records are missing", name, h.synced, lastLSN)
			}
			if h.kind != KindCheckpoint {
				if (lastInSeg != 0 && h.lsn != lastInSeg+1) || h.lsn <= lastLSN {
					break // out of sequence: treat as the end, checked below
				}
				lastInSeg, lastLSN = h.lsn, h.lsn
				if max, ok := seg.streams[h.stream]; !ok || h.index > max {
					seg.streams[h.stream] = h.index
				}
				all = append(all, found{Record: Record{Stream: h.stream, Kind: h.kind, Index: h.index, Payload: payload}, lsn: h.lsn})
			} else if h.index == 0 {
				delete(l.cps, h.stream)
			} else {
				l.cps[h.stream] = h.index
			}
			records++
			o += size
		}
		if o > len(b) {
			o = len(b) // the last record's padding was cut off
		}
		// o is where valid records end. Anything after it must be zeros or
		// a torn write: a valid record there that was written after more
		// than we recovered had been made durable proves data was lost.
		tailZero := allZero(b[o:])
		for p := align8(o); !tailZero && p+recHeaderSize <= len(b); p += 8 {
			if binary.LittleEndian.Uint64(b[p:]) == 0 {
				continue
			}
			if h, _, _, ok := parseRecord(b, p); ok && h.synced > lastLSN {
				return nil, nil, fmt.Errorf("wal: segment %s: bad record at offset %d followed by a durable record (lsn %d at offset %d): refusing to cut durable data", name, o, h.lsn, p)
			}
		}
		if !tailZero || int64(len(b)) < opts.SegmentSize {
			if err := cutSegment(path, int64(o), opts.SegmentSize); err != nil {
				return nil, nil, err
			}
			if !tailZero {
				rec.Cut = fmt.Sprintf("segment %s cut at offset %d after lsn %d", name, o, lastLSN)
			}
		}
		l.segs = append(l.segs, seg)
		prevSeq, prevHadRecords = seq, records > 0
		lastEmpty = records == 0
	}

	for _, f := range all {
		cp := l.cps[f.Stream]
		if cp == math.MaxUint64 || f.Index < cp {
			continue
		}
		s := rec.Streams[f.Stream]
		if s == nil {
			s = &Stream{Checkpoint: cp}
			rec.Streams[f.Stream] = s
		}
		s.Records = append(s.Records, f.Record)
	}
	for stream, cp := range l.cps {
		if cp != math.MaxUint64 && rec.Streams[stream] == nil {
			rec.Streams[stream] = &Stream{Checkpoint: cp}
		}
	}

	// Appends go to a fresh segment (or an empty last one), which starts
	// with the checkpoint table like any other.
	if lastEmpty {
		cur := l.segs[len(l.segs)-1]
		f, err := os.OpenFile(cur.path, os.O_RDWR, 0)
		if err != nil {
			return nil, nil, err
		}
		cur.f = f
		l.cur = cur
	} else {
		seq := prevSeq + 1
		cur, err := createSegment(dir, seq, opts.SegmentSize)
		if err != nil {
			return nil, nil, err
		}
		l.segs = append(l.segs, cur)
		l.cur = cur
	}
	l.off = segHeaderSize
	l.needTable = true
	l.nextLSN = lastLSN + 1
	l.durableLSN = lastLSN
	l.stats.segments.Store(uint64(len(l.segs)))
	// No segment is deleted before cur's checkpoint table is durable: until
	// then the old segments may hold the only copy of a checkpoint.
	l.startPrepare(l.cur.seq + 1)
	l.wg.Add(1)
	go l.run()
	return l, rec, nil
}

// listSegments returns the sequence numbers of dir's segments in order and
// removes segments whose preparation a crash interrupted.
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".wal.tmp") {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return nil, err
			}
			continue
		}
		if !strings.HasSuffix(name, ".wal") {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, ".wal"), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("wal: unexpected file %s in %s", name, dir)
		}
		seqs = append(seqs, seq)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return seqs, nil
}

// allZero reports whether b is all zeros; bytes.Equal against a block of
// zeros is vectorized (a byte loop made Open take seconds under the race
// detector).
func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// cutSegment zeroes a segment from off to its end (and restores its size),
// so no torn bytes remain for a later scan to misread.
func cutSegment(path string, off, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(off); err != nil {
		return fmt.Errorf("wal: cutting %s: %w", path, err)
	}
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("wal: cutting %s: %w", path, err)
	}
	return f.Sync()
}
