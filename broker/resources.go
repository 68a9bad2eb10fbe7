package broker

import "github.com/warrenmq/warren/broker/sysinfo"

// Resources are the node's resource readings and alarm thresholds, as
// rabbitmq_prometheus reports them.
type Resources struct {
	// MemoryHighWatermark and DiskFreeLimit are the alarm thresholds in
	// bytes (0: that alarm is off).
	MemoryHighWatermark, DiskFreeLimit uint64
	// ResidentMemory and DiskFree are the current readings; the OK flags
	// are false where the system does not report them.
	ResidentMemory, DiskFree     uint64
	ResidentMemoryOK, DiskFreeOK bool
}

// Resources reads memory and disk now, with the alarm thresholds.
func (b *Broker) Resources() Resources {
	b.alarms.mu.Lock()
	r := Resources{MemoryHighWatermark: b.alarms.memLimit, DiskFreeLimit: b.alarms.diskLimit}
	b.alarms.mu.Unlock()
	r.ResidentMemory, r.ResidentMemoryOK = sysinfo.ResidentMemory()
	r.DiskFree, r.DiskFreeOK = sysinfo.FreeDisk(b.cfg.DataDir)
	return r
}

// DataDir is the directory durable state lives in.
func (b *Broker) DataDir() string { return b.cfg.DataDir }
