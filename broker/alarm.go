package broker

import (
	"runtime"
	"sync"
	"time"

	"github.com/warrenmq/warren/broker/sysinfo"
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

// Blocked returns why publishers are held back now ("" when publishing may
// go on: no resource alarm is set) and a channel closed on the next change.
func (b *Broker) Blocked() (reason string, changed <-chan struct{}) {
	return b.alarms.state()
}

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
func (b *Broker) SetMemoryHighWatermark(bytes uint64) {
	b.alarms.mu.Lock()
	b.alarms.memLimit = bytes
	b.alarms.mu.Unlock()
	b.checkAlarms()
}

// SetDiskFreeLimit changes the disk alarm threshold (free bytes under the
// data directory; 0 turns the alarm off).
func (b *Broker) SetDiskFreeLimit(bytes uint64) {
	b.alarms.mu.Lock()
	b.alarms.diskLimit = bytes
	b.alarms.mu.Unlock()
	b.checkAlarms()
}

// watchAlarms checks resources until the broker stops.
func (b *Broker) watchAlarms() {
	stop := b.Stopping()
	t := time.NewTicker(alarmInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			b.checkAlarms()
		}
	}
}

func (b *Broker) checkAlarms() {
	b.alarms.mu.Lock()
	memLimit, diskLimit := b.alarms.memLimit, b.alarms.diskLimit
	wasMem, wasDisk := b.alarms.memory, b.alarms.disk
	b.alarms.mu.Unlock()
	// A reading the system does not offer leaves its alarm off.
	rss, rssOK := sysinfo.ResidentMemory()
	free, freeOK := sysinfo.FreeDisk(b.cfg.DataDir)
	memory := memLimit > 0 && rssOK && rss > memLimit
	disk := diskLimit > 0 && freeOK && free < diskLimit
	if memory != wasMem {
		b.log.Warn("memory alarm", "set", memory, "limit", memLimit)
	}
	if disk != wasDisk {
		b.log.Warn("disk alarm", "set", disk, "limit", diskLimit)
	}
	b.alarms.set(memory, disk)
}

// reportUnsupportedAlarms logs, once at start, each alarm that this
// system gives no reading for: it stays off.
func (b *Broker) reportUnsupportedAlarms() {
	if _, ok := sysinfo.ResidentMemory(); !ok && b.cfg.MemoryHighWatermark > 0 {
		b.log.Warn("memory alarm off: this system does not report the process's resident memory", "os", runtime.GOOS)
	}
	if _, ok := sysinfo.FreeDisk(b.cfg.DataDir); !ok && b.cfg.DiskFreeLimit > 0 {
		b.log.Warn("disk alarm off: this system does not report free disk space", "os", runtime.GOOS, "dir", b.cfg.DataDir)
	}
}

// TotalMemory is the machine's RAM, for a watermark given as a fraction; 0
// where the system does not say.
func TotalMemory() uint64 { return sysinfo.TotalMemory() }

// Alarms reports which resource alarms are in effect now.
func (b *Broker) Alarms() (memory, disk bool) {
	b.alarms.mu.Lock()
	defer b.alarms.mu.Unlock()
	return b.alarms.memory, b.alarms.disk
}
