//go:build !linux && !darwin && !windows

package sysinfo

// ResidentMemory is not read on this system: the memory alarm is off.
func ResidentMemory() (uint64, bool) { return 0, false }

// TotalMemory is not read on this system: 0.
func TotalMemory() uint64 { return 0 }

// FreeDisk is not read on this system: the disk alarm is off.
func FreeDisk(string) (uint64, bool) { return 0, false }
