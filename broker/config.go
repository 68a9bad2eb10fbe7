package broker

import (
	"github.com/warrenmq/warren/vhost"
)

// Config is everything the broker root needs: where state lives, the
// limits every virtual host takes, the resource alarms and the baseline of
// users and vhosts. It is plain data: the command line fills it in from
// configs/warren.yaml, tests build one by hand.
type Config struct {
	// DataDir is where durable state lives; created if missing.
	DataDir string
	// VHostLimits are the default of every virtual host that has no
	// limits of its own (SetVhostLimit); here zero (or less) is unlimited.
	VHostLimits vhost.Limits
	// QueueMemoryBudget is the memory (bytes) that queues may use for
	// messages kept in memory; beyond it their backlogs stay on disk and are
	// read back as consumers drain them. 0 keeps everything in memory.
	QueueMemoryBudget int64
	// MemoryHighWatermark is the resident memory (bytes) above which
	// publishers are blocked (RabbitMQ's vm_memory_high_watermark); 0: off.
	MemoryHighWatermark uint64
	// DiskFreeLimit is the free space under DataDir (bytes) below which
	// publishers are blocked (RabbitMQ's disk_free_limit); 0: off.
	DiskFreeLimit uint64

	// JournalSegmentSize is the size of the storage journal's segment
	// files; 0 is storage's default (8 MiB). A new data directory
	// preallocates two, so brokers started many times on fresh
	// directories (tests, amqptest) use a small one.
	JournalSegmentSize int64

	// StorageFault, for tests, runs inside every storage commit; an error
	// fails the commit as a broken disk would.
	StorageFault func() error

	// Users and Vhosts are a baseline applied at every start: each one (and
	// each of a user's permissions) that is not stored is created and
	// stored; one that is stored keeps its stored value. At run time they
	// change through Broker.Apply.
	Users  []User
	Vhosts []string
	// LoopbackUsers may connect only from a loopback address, over AMQP and
	// the management API (RabbitMQ's loopback_users). nil means guest, as
	// in RabbitMQ; an empty list lets everyone connect from anywhere.
	LoopbackUsers []string
}

// User is a login with per-vhost permissions.
type User struct {
	Name string
	// Password is the clear-text password, used when PasswordHash is
	// empty; only its salted SHA-256 hash is stored.
	Password string
	// PasswordHash is RabbitMQ's base64 salted SHA-256 hash (rabbit_password_hashing_sha256).
	PasswordHash string
	// Tags are RabbitMQ user tags such as "administrator".
	Tags []string
	// Permissions maps a vhost name to its configure/write/read patterns.
	Permissions map[string]Permission
}

// Permission holds RabbitMQ's three permission regular expressions.
type Permission struct {
	Configure string
	Write     string
	Read      string
}

// DefaultConfig returns the broker settings of configs/warren.yaml, for
// tests and embedding.
func DefaultConfig() Config {
	return Config{
		DataDir:           "./data",
		QueueMemoryBudget: 32 << 20,
		// RabbitMQ's defaults: 40% of RAM, 50 MB of free disk.
		MemoryHighWatermark: uint64(0.4 * float64(TotalMemory())),
		DiskFreeLimit:       50_000_000,
		Users: []User{{
			Name:        "guest",
			Password:    "guest",
			Tags:        []string{"administrator"},
			Permissions: map[string]Permission{"/": {Configure: ".*", Write: ".*", Read: ".*"}},
		}},
		Vhosts:        []string{"/"},
		LoopbackUsers: []string{"guest"},
	}
}
