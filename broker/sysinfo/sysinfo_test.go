package sysinfo

import (
	"runtime"
	"testing"
)

// TestReaders: on the systems that offer them, the readers give plausible
// numbers; elsewhere they say they cannot.
func TestReaders(t *testing.T) {
	rss, ok := ResidentMemory()
	if runtime.GOOS == "linux" || runtime.GOOS == "windows" {
		if !ok || rss < 1<<20 {
			t.Errorf("ResidentMemory() = %d, %v; want at least 1 MiB", rss, ok)
		}
	}
	total := TotalMemory()
	if runtime.GOOS == "linux" || runtime.GOOS == "darwin" || runtime.GOOS == "windows" {
		if total < rss || total < 64<<20 {
			t.Errorf("TotalMemory() = %d; want more than the RSS %d and 64 MiB", total, rss)
		}
	}
	free, ok := FreeDisk(t.TempDir())
	if ok && free == 0 {
		t.Errorf("FreeDisk() = 0 with ok")
	}
	if _, ok := FreeDisk("/no/such/dir/at/all"); ok {
		t.Errorf("FreeDisk of a missing directory says ok")
	}
}
