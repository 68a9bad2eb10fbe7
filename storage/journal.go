package storage

import (
	"encoding/binary"
	"fmt"
)

// The journal is the write-ahead log (storage/wal) in front of the bbolt
// file. The committer encodes each group's writes into journal records,
// appends them and waits for the log's one fdatasync; then the group's
// callbacks run (a publisher confirm goes out). The applier (applier.go)
// replays the same records into bbolt later, in large transactions, and
// checkpoints the journal behind them. Open replays what a crash left
// unapplied. So the hot path pays one fdatasync of sequential bytes per
// group instead of a bbolt transaction's two and its B-tree pages, and a
// message acked before its group is applied never reaches bbolt at all
// (cancel.go works across the groups of one apply).
//
// All the journal's records are in one stream; a record's index is its
// number in the stream, counted from 1. Its payload is the high-water mark
// of message ids when it was encoded, then its ops:
//
//	u64 high id
//	op: u8 kind, then by kind
//	  put definition:  str kind, str key, bytes value
//	  delete definition: str kind, str key
//	  put message:     u64 id, u32 refs, bytes value
//	  delete message:  u64 id
//	  put entry:       str queue, u64 seq, bytes value
//	  delete entry:    str queue, u64 seq
//	  delete queue:    str queue
//
// where str and bytes are a uvarint length and the bytes, and integers are
// little-endian.

// JournalDir is the journal's directory inside the data directory.
const JournalDir = "journal"

// journalStream is the journal's stream in its log.
const journalStream = 1

// journalKindOps is the record kind of a journal record.
const journalKindOps uint8 = 1

// DefaultJournalSegmentSize is the size of the journal's segment files.
// Each is zero-filled before use and read whole at Open, so they are kept
// small; a batch of up to half of one (4 MiB) goes through the journal.
const DefaultJournalSegmentSize = 8 << 20

// maxRecord returns the largest journal record for a segment size: half a
// segment (the log's own limit) less room for the segment header and the
// checkpoint table, so that a record always fits in a fresh segment. A
// batch larger than that bypasses the journal (applier.go, direct writes).
func maxRecord(segmentSize int64) int { return int(segmentSize/2) - 4096 }

// encodedSize returns how many bytes o takes in a record, at most.
func encodedSize(o *op) int {
	return 1 + 3*binary.MaxVarintLen64 + 12 + len(o.name) + len(o.key) + len(o.value)
}

// batchSize returns the bytes b's ops take in a record, at most.
func batchSize(b *Batch) int {
	n := 0
	for i := range b.ops {
		n += encodedSize(&b.ops[i])
	}
	return n
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// appendOps encodes b's ops onto buf.
func appendOps(buf []byte, b *Batch) []byte {
	for i := range b.ops {
		o := &b.ops[i]
		buf = append(buf, byte(o.kind))
		switch o.kind {
		case opPutDef:
			buf = appendStr(buf, o.name)
			buf = appendStr(buf, o.key)
			buf = appendBytes(buf, o.value)
		case opDelDef:
			buf = appendStr(buf, o.name)
			buf = appendStr(buf, o.key)
		case opPutMsg:
			buf = binary.LittleEndian.AppendUint64(buf, o.n)
			buf = binary.LittleEndian.AppendUint32(buf, o.refs)
			buf = appendBytes(buf, o.value)
		case opDelMsg:
			buf = binary.LittleEndian.AppendUint64(buf, o.n)
		case opPutEntry:
			buf = appendStr(buf, o.name)
			buf = binary.LittleEndian.AppendUint64(buf, o.n)
			buf = appendBytes(buf, o.value)
		case opDelEntry:
			buf = appendStr(buf, o.name)
			buf = binary.LittleEndian.AppendUint64(buf, o.n)
		case opDelQueue:
			buf = appendStr(buf, o.name)
		}
	}
	return buf
}

// decodeRecord decodes a journal record's ops into b (appending) and
// returns its high id. The ops' values are slices of p.
func decodeRecord(p []byte, b *Batch) (highID uint64, err error) {
	bad := func(what string) (uint64, error) {
		return 0, fmt.Errorf("%w: journal record: %s", ErrCorrupt, what)
	}
	if len(p) < 8 {
		return bad("short")
	}
	highID = binary.LittleEndian.Uint64(p)
	p = p[8:]
	bytesField := func() ([]byte, bool) {
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return nil, false
		}
		v := p[k : k+int(n) : k+int(n)]
		p = p[k+int(n):]
		return v, true
	}
	u64 := func() (uint64, bool) {
		if len(p) < 8 {
			return 0, false
		}
		v := binary.LittleEndian.Uint64(p)
		p = p[8:]
		return v, true
	}
	for len(p) > 0 {
		o := op{kind: opKind(p[0])}
		p = p[1:]
		ok := true
		var s, k []byte
		switch o.kind {
		case opPutDef, opDelDef:
			if s, ok = bytesField(); ok {
				k, ok = bytesField()
			}
			o.name, o.key = string(s), string(k)
			if ok && o.kind == opPutDef {
				o.value, ok = bytesField()
			}
		case opPutMsg:
			if o.n, ok = u64(); ok && len(p) >= 4 {
				o.refs = binary.LittleEndian.Uint32(p)
				p = p[4:]
				o.value, ok = bytesField()
			} else {
				ok = false
			}
		case opDelMsg:
			o.n, ok = u64()
		case opPutEntry, opDelEntry:
			if s, ok = bytesField(); ok {
				o.name = string(s)
				o.n, ok = u64()
			}
			if ok && o.kind == opPutEntry {
				o.value, ok = bytesField()
			}
		case opDelQueue:
			s, ok = bytesField()
			o.name = string(s)
		default:
			return bad(fmt.Sprintf("op kind %d", o.kind))
		}
		if !ok {
			return bad(fmt.Sprintf("truncated op of kind %d", o.kind))
		}
		b.ops = append(b.ops, o)
	}
	return highID, nil
}
