package wal

import "os"

// The record format and the durability primitives, exported for other logs
// that keep the same on-disk records in files of their own (a stream's
// segment log, storage/streamlog), so there is one format, one checksum and
// one torn-tail rule in the tree.

// RecordHeaderSize is the bytes of a record's header.
const RecordHeaderSize = recHeaderSize

// RecordHeader is a record's decoded header.
type RecordHeader struct {
	Length uint32 // payload bytes
	LSN    uint64
	Synced uint64 // the highest LSN durable when the record was written
	Stream uint64
	Index  uint64
	Kind   uint8
}

// RecordSize is the bytes a record with n payload bytes takes on disk,
// padding included.
func RecordSize(n int) int { return recordSize(n) }

// AppendRecord encodes a record at the end of b without its synced field and
// checksum; SealRecord sets them once the writer knows what is durable.
func AppendRecord(b []byte, lsn, stream, index uint64, kind uint8, payload []byte) []byte {
	return appendRecord(b, lsn, stream, index, kind, payload)
}

// SealRecord sets the synced field and the checksum of the record at b[0:].
func SealRecord(b []byte, synced uint64) { seal(b, synced) }

// ParseRecord decodes the record at b[o:]; ok is false if there is none there
// (zeros, a torn write, corruption). size includes padding.
func ParseRecord(b []byte, o int) (h RecordHeader, payload []byte, size int, ok bool) {
	rh, payload, size, ok := parseRecord(b, o)
	return RecordHeader{Length: rh.length, LSN: rh.lsn, Synced: rh.synced, Stream: rh.stream, Index: rh.index, Kind: rh.kind}, payload, size, ok
}

// Datasync makes f's data durable with one fdatasync where the platform has
// it.
func Datasync(f *os.File) error { return datasync(f) }

// SyncDir makes a directory's entries durable (a no-op where the platform
// cannot sync a directory).
func SyncDir(dir string) error { return syncDir(dir) }
