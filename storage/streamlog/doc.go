// Package streamlog is one stream's append-only log: the storage of an
// `x-queue-type: stream` queue. Consumers read it from any offset while it
// grows, and retention removes whole segments from its head.
//
// # Files
//
// A stream is a directory of segment files, each named by the offset of its
// first entry (%020d.seg). A segment starts with a 32-byte header (magic
// WRNSTR01, first offset, CRC32C); entries follow in storage/wal's record
// format (CRC32C over header and payload, padded to 8 bytes), with:
//
//	lsn     offset + 1
//	synced  the number of entries durable when the record was written
//	stream  the chunk's timestamp, Unix milliseconds (a segment log holds
//	        one stream, so wal's stream field carries the time instead)
//	index   offset
//	kind    1 for the first entry of a chunk, 0 for the others
//
// A chunk is what one group commit wrote: every entry appended while the
// previous commit was being made durable. Like RabbitMQ's osiris chunks, it
// is the unit of `x-stream-offset: last` and of timestamp look-ups.
//
// # Writing
//
// Append encodes into one buffer under a mutex; one writer goroutine per
// stream takes the buffer, stamps and seals it, writes it with one WriteAt
// and makes it durable with one fdatasync, then runs the appenders'
// callbacks (publisher confirms) and OnDurable (which wakes consumers).
// Readers never see an entry before it is durable. The active segment is
// zero-filled ahead in 4 MiB steps, so most commits overwrite allocated
// blocks and fdatasync has no size change to flush.
//
// The writer is the stream's own, not storage/wal's shared one, because here
// the segment files are the data: consumers read them by offset for as long
// as retention keeps them, and retention deletes one stream's oldest files.
// In the shared WAL streams interleave in segments that are deleted when no
// stream needs them, and recovery hands every record back in memory; a
// stream would have to be written twice (WAL, then its own files) to be read
// by offset. The format, checksum and torn-tail rule are wal's (its exported
// record functions).
//
// # Reading and the index
//
// A Reader reads one segment file at a time with ReadAt into a 64 KiB
// buffer; nothing holds the stream in memory. Each segment keeps a sparse
// in-memory index (a chunk start every 64 KiB of file: offset, timestamp,
// position), rebuilt by a scan at Open, which Seek and timestamp look-ups
// binary-search before reading forward.
//
// # Retention
//
// MaxBytes and MaxAge remove whole segments, never the active one, as
// RabbitMQ does: by size when a segment is rolled over, by age then and on
// Retain (called periodically by the owner). A reader whose segment was
// removed continues from the new first offset.
//
// # Recovery
//
// Open scans every segment, checking each record's checksum. Sealed segments
// must be whole. The last segment's tail is cut at the last valid record,
// unless a valid record after the bad spot has a synced count beyond what
// was recovered: that proves the bad spot had been made durable, so it is
// lost data and Open refuses, as storage/wal does.
package streamlog
