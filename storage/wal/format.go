package wal

import (
	"encoding/binary"
	"hash/crc32"
)

const (
	segMagic      = "WRNWAL01"
	segHeaderSize = 32
	recHeaderSize = 41

	// KindCheckpoint is the record kind the log keeps for itself; streams
	// use kinds 0 to 254.
	KindCheckpoint uint8 = 255
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record is one entry of a stream.
type Record struct {
	Stream  uint64
	Kind    uint8
	Index   uint64
	Payload []byte
}

// recHeader is a record's decoded header.
type recHeader struct {
	length uint32
	lsn    uint64
	synced uint64
	stream uint64
	index  uint64
	kind   uint8
}

func align8(n int) int { return (n + 7) &^ 7 }

// recordSize is the bytes a record with n payload bytes takes on disk.
func recordSize(n int) int { return align8(recHeaderSize + n) }

// appendRecord encodes a record without its synced field and CRC, which the
// writer fills in when it knows which batch the record is in.
func appendRecord(b []byte, lsn, stream, index uint64, kind uint8, payload []byte) []byte {
	n := len(b)
	size := recordSize(len(payload))
	b = append(b, make([]byte, size)...) // compiled to a memclr, no allocation beyond growth
	h := b[n:]
	binary.LittleEndian.PutUint32(h[4:], uint32(len(payload)))
	binary.LittleEndian.PutUint64(h[8:], lsn)
	binary.LittleEndian.PutUint64(h[24:], stream)
	binary.LittleEndian.PutUint64(h[32:], index)
	h[40] = kind
	copy(h[recHeaderSize:], payload)
	return b
}

// seal sets the synced field of the record at b[0:] and its CRC.
func seal(b []byte, synced uint64) {
	binary.LittleEndian.PutUint64(b[16:], synced)
	n := binary.LittleEndian.Uint32(b[4:])
	binary.LittleEndian.PutUint32(b[0:], crc32.Checksum(b[4:recHeaderSize+int(n)], castagnoli))
}

// parseRecord decodes the record at b[o:]; ok is false if there is none
// there (zeros, a torn write, corruption).
func parseRecord(b []byte, o int) (h recHeader, payload []byte, size int, ok bool) {
	if o < 0 || o+recHeaderSize > len(b) {
		return h, nil, 0, false
	}
	r := b[o:]
	h.length = binary.LittleEndian.Uint32(r[4:])
	if uint64(h.length) > uint64(len(r)-recHeaderSize) {
		return h, nil, 0, false
	}
	end := recHeaderSize + int(h.length)
	if crc32.Checksum(r[4:end], castagnoli) != binary.LittleEndian.Uint32(r) {
		return h, nil, 0, false
	}
	h.lsn = binary.LittleEndian.Uint64(r[8:])
	h.synced = binary.LittleEndian.Uint64(r[16:])
	h.stream = binary.LittleEndian.Uint64(r[24:])
	h.index = binary.LittleEndian.Uint64(r[32:])
	h.kind = r[40]
	if h.kind != KindCheckpoint && h.lsn == 0 {
		return h, nil, 0, false
	}
	return h, r[recHeaderSize:end], recordSize(int(h.length)), true
}

// segHeader encodes a segment's header.
func segHeader(seq uint64) []byte {
	b := make([]byte, segHeaderSize)
	copy(b, segMagic)
	binary.LittleEndian.PutUint64(b[8:], seq)
	binary.LittleEndian.PutUint32(b[16:], crc32.Checksum(b[:16], castagnoli))
	return b
}

// parseSegHeader checks a segment's header and returns its sequence number.
func parseSegHeader(b []byte) (uint64, bool) {
	if len(b) < segHeaderSize || string(b[:8]) != segMagic {
		return 0, false
	}
	if crc32.Checksum(b[:16], castagnoli) != binary.LittleEndian.Uint32(b[16:]) {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b[8:]), true
}
