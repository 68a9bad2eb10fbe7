package wal

import (
	"fmt"
	"os"
	"path/filepath"
)

// segment is one file of the log, as the writer knows it.
type segment struct {
	seq  uint64
	path string
	f    *os.File // nil once sealed and closed
	// streams maps each stream with data records here to the highest index
	// among them: the segment is needed while any of them is at or above
	// that stream's checkpoint.
	streams map[uint64]uint64
}

func segName(dir string, seq uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%016x.wal", seq))
}

// zeros is the block segments are filled with when prepared.
var zeros = make([]byte, 1<<20)

// createSegment writes a new segment file filled with zeros to size, syncs
// it and its directory entry, and returns it open for writing. Filling (not
// fallocate) means later commits overwrite written blocks, so fdatasync has
// no extent metadata to flush.
func createSegment(dir string, seq uint64, size int64) (*segment, error) {
	path := segName(dir, seq)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*segment, error) {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("wal: preparing segment %s: %w", filepath.Base(path), err)
	}
	if _, err := f.Write(segHeader(seq)); err != nil {
		return fail(err)
	}
	for off := int64(segHeaderSize); off < size; {
		n := int64(len(zeros))
		if size-off < n {
			n = size - off
		}
		if _, err := f.Write(zeros[:n]); err != nil {
			return fail(err)
		}
		off += n
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	if err := syncDir(dir); err != nil {
		return fail(err)
	}
	return &segment{seq: seq, path: path, f: f, streams: make(map[uint64]uint64)}, nil
}

// syncDir makes a directory's entries durable. Windows cannot open a
// directory for syncing, and orders its metadata itself.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil && isUnsupportedDirSync(err) {
		return nil
	}
	return err
}
