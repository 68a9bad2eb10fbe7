//go:build unix

package management

import (
	"os"
	"syscall"
)

// openFDs counts the process's open file descriptors (0 where /proc is
// missing).
func openFDs() int {
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	return max(len(names)-1, 0) // less the one reading the directory
}

// maxFDs is the soft open-files limit.
func maxFDs() uint64 {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return 0
	}
	return l.Cur
}
