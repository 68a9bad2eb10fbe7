package wal

import (
	"os"
	"syscall"
)

// datasync flushes f's data (and the metadata needed to read it back), not
// its timestamps: one device flush per commit on a preallocated file.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}

func isUnsupportedDirSync(error) bool { return false }
