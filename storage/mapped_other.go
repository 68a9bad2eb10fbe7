//go:build !linux

package storage

// unmapResident is a no-op where resident mapped pages are not worth the
// trouble.
func unmapResident(addr, size uintptr) {}
