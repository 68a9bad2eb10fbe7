// Package wal is one write-ahead log shared by many streams: raft groups now,
// later streams and classic messages. Appends from any goroutine go into one
// buffer; one writer goroutine writes each batch and makes it durable with a
// single fdatasync, then runs the appenders' callbacks, so a thousand streams
// under load cost one fsync per batch, not one each (RabbitMQ's shared WAL).
//
// # Files
//
// The log is a directory of segment files named by a sequence number
// (%016x.wal), each preallocated with zeros to Options.SegmentSize before it
// is used, so a commit overwrites allocated blocks. A segment starts with a
// 32-byte header (magic, sequence, CRC); records follow, each padded to 8
// bytes:
//
//	crc32c  u32  over the rest of the header and the payload
//	length  u32  payload bytes
//	lsn     u64  log sequence number (0 for checkpoint records)
//	synced  u64  the highest LSN already durable when this record was written
//	stream  u64
//	index   u64  the stream's own position (a raft index)
//	kind    u8   the stream's record type; 255 is a checkpoint
//	payload
//
// A batch never spans segments. When a batch does not fit the current
// segment, the writer moves to the next (prepared in advance by another
// goroutine) and writes, before the batch and under the same fdatasync, every
// stream's checkpoint: so the newest segments always know every checkpoint and
// older segments can be deleted in any order.
//
// # Checkpoints and deletion
//
// Checkpoint(stream, index) says the stream no longer needs its records with
// a lower index (a raft snapshot was taken). Once that is durable, a segment
// none of whose streams needs it any more is deleted.
//
// # Recovery
//
// Open scans the segments in order and returns each stream's records at or
// after its last checkpoint. A torn or corrupt tail is cut at the last valid
// record. The synced field is what makes that safe: a valid record found
// after a bad spot whose synced LSN is beyond the last valid record proves
// that the bad spot had been made durable, so that is not a torn tail but
// lost data, and Open refuses with an error naming the segment and offset.
package wal
