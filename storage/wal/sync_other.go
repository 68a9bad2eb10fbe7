//go:build !linux

package wal

import "os"

// datasync is File.Sync where fdatasync is not available.
func datasync(f *os.File) error { return f.Sync() }

// isUnsupportedDirSync reports the error platforms give for syncing a
// directory they do not let one sync (Windows).
func isUnsupportedDirSync(err error) bool { return err != nil }
