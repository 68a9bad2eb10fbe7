package sysinfo

import "golang.org/x/sys/unix"

// ResidentMemory is not offered: macOS reads it through libproc or Mach
// calls that need cgo, so the memory alarm is off there.
func ResidentMemory() (uint64, bool) { return 0, false }

// TotalMemory is the machine's RAM in bytes (sysctl hw.memsize); 0 when unknown.
func TotalMemory() uint64 {
	n, err := unix.SysctlUint64("hw.memsize")
	if err != nil {
		return 0
	}
	return n
}

// FreeDisk is the space available to this process under dir, in bytes.
func FreeDisk(dir string) (uint64, bool) {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return 0, false
	}
	return st.Bavail * uint64(st.Bsize), true
}
