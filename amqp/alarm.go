package amqp

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/warrenmq/warren/amqp/wire"
)

// alarmInterval is how often memory and disk are checked.
const alarmInterval = 100 * time.Millisecond

// alarms is RabbitMQ's resource alarm: when memory use crosses the high
// watermark, or free disk space falls below the limit, connections that
// publish are told connection.blocked and are not read until it clears,
// while consumers keep draining.
type alarms struct {
	mu        sync.Mutex // guards the fields below
	memLimit  uint64     // bytes of RSS; 0: no memory alarm
	diskLimit uint64     // free bytes under the data directory; 0: no disk alarm
	memory    bool
	disk      bool
	changed   chan struct{} // closed and replaced whenever the state changes
}

// state returns the current block reason ("" when publishing may go on)
// and a channel closed on the next change.
func (a *alarms) state() (string, <-chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	reason := ""
	switch {
	case a.memory:
		reason = "low on memory"
	case a.disk:
		reason = "low on disk space"
	}
	return reason, a.changed
}

func (a *alarms) set(memory, disk bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if memory == a.memory && disk == a.disk {
		return
	}
	a.memory, a.disk = memory, disk
	close(a.changed)
	a.changed = make(chan struct{})
}

// SetMemoryHighWatermark changes the memory alarm threshold (bytes of
// resident memory; 0 turns the alarm off), as rabbitmqctl
// set_vm_memory_high_watermark does.
func (s *Server) SetMemoryHighWatermark(bytes uint64) {
	s.alarms.mu.Lock()
	s.alarms.memLimit = bytes
	s.alarms.mu.Unlock()
	s.checkAlarms()
}

// SetDiskFreeLimit changes the disk alarm threshold (free bytes under the
// data directory; 0 turns the alarm off).
func (s *Server) SetDiskFreeLimit(bytes uint64) {
	s.alarms.mu.Lock()
	s.alarms.diskLimit = bytes
	s.alarms.mu.Unlock()
	s.checkAlarms()
}

// watchAlarms checks resources until stop is closed.
func (s *Server) watchAlarms(stop <-chan struct{}) {
	t := time.NewTicker(alarmInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.checkAlarms()
		}
	}
}

func (s *Server) checkAlarms() {
	s.alarms.mu.Lock()
	memLimit, diskLimit := s.alarms.memLimit, s.alarms.diskLimit
	wasMem, wasDisk := s.alarms.memory, s.alarms.disk
	s.alarms.mu.Unlock()
	memory := memLimit > 0 && residentMemory() > memLimit
	disk := diskLimit > 0 && freeDisk(s.cfg.DataDir) < diskLimit
	if memory != wasMem {
		s.log.Warn("memory alarm", "set", memory, "limit", memLimit)
	}
	if disk != wasDisk {
		s.log.Warn("disk alarm", "set", disk, "limit", diskLimit)
	}
	s.alarms.set(memory, disk)
}

// residentMemory is the process's RSS, which is what the watermark is about.
func residentMemory() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	fields := bytes.Fields(b)
	if len(fields) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(string(fields[1]), 10, 64)
	return pages * uint64(os.Getpagesize())
}

// TotalMemory is the machine's RAM, for a watermark given as a fraction.
func TotalMemory() uint64 {
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

func freeDisk(dir string) uint64 {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return ^uint64(0) // unknown: never alarm on it
	}
	return st.Bavail * uint64(st.Bsize)
}

// waitWhileBlocked holds a publishing connection's reader while an alarm
// is on, telling the client with connection.blocked/unblocked if it says it
// understands them. It returns early when the connection is being closed.
func (c *conn) waitWhileBlocked() {
	reason, changed := c.srv.alarms.state()
	if reason == "" {
		return
	}
	if c.blockedNotify {
		c.sendRaw(&wire.ConnectionBlocked{Reason: reason}, 0)
	}
	for reason != "" {
		select {
		case <-changed:
			reason, changed = c.srv.alarms.state()
		case <-c.unblockReader:
			return
		}
	}
	if c.blockedNotify {
		c.sendRaw(&wire.ConnectionUnblocked{}, 0)
	}
}

// Alarms reports which resource alarms are in effect now.
func (s *Server) Alarms() (memory, disk bool) {
	s.alarms.mu.Lock()
	defer s.alarms.mu.Unlock()
	return s.alarms.memory, s.alarms.disk
}
