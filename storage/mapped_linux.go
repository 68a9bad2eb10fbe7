package storage

import "syscall"

// unmapResident drops the process's resident pages of a read-only shared
// file mapping: they stay in the page cache and fault back in when read.
func unmapResident(addr, size uintptr) {
	// An error leaves the pages mapped, which is only memory accounting.
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, addr, size, syscall.MADV_DONTNEED)
}
