package amqp

import (
	"slices"
	"time"

	"github.com/warrenmq/warren/vhost"
)

// Config is everything the AMQP server needs to run. It is plain data: the
// command line fills it in from the configs package, so that
// tests can build one by hand.
type Config struct {
	// Listen is the TCP address of the AMQP listener, e.g. ":5672".
	Listen string
	// TLS configures the AMQPS listener; it is off when TLS.Listen is empty.
	TLS TLSConfig
	// DataDir is where durable state lives; created if missing.
	DataDir string

	// FrameMax is the largest frame the server accepts and offers in tune.
	FrameMax uint32
	// ChannelMax is the highest channel number a connection may open.
	ChannelMax uint16
	// Heartbeat is the interval the server proposes in connection.tune; 0 disables.
	Heartbeat time.Duration
	// MaxMessageSize bounds a message body; larger publishes close the channel with 406.
	MaxMessageSize uint64
	// ConsumerTimeout closes a channel whose delivery stays unacked this
	// long (RabbitMQ's consumer_timeout); 0 disables. Queues may set their
	// own with x-consumer-timeout.
	ConsumerTimeout time.Duration
	// MaxConnections bounds the open connections on this server (RabbitMQ's
	// connection_max); one more is refused at connection.open with 530. 0 is
	// unlimited.
	MaxConnections int
	// VHostLimits apply to every virtual host (RabbitMQ's per-vhost
	// max-connections and max-queues); zero is unlimited.
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
	// HandshakeTimeout drops a client that has not opened its connection
	// this long after connecting (RabbitMQ's handshake_timeout); 0 means 10s.
	HandshakeTimeout time.Duration

	// StorageFault, for tests, runs inside every storage commit; an error
	// fails the commit as a broken disk would.
	StorageFault func() error

	// Users and Vhosts are a baseline applied at every start: each one (and
	// each of a user's permissions) that is not stored is created and
	// stored; one that is stored keeps its stored value. At run time they
	// change through Server.Apply.
	Users  []User
	Vhosts []string
	// LoopbackUsers may connect only from a loopback address, over AMQP and
	// the management API (RabbitMQ's loopback_users). nil means guest, as
	// in RabbitMQ; an empty list lets everyone connect from anywhere.
	LoopbackUsers []string

	// Identity is the product and version reported to clients; zero means
	// DefaultIdentity.
	Identity Identity
}

// Identity is what the server says it is: connection.start's product and
// version properties, and the management API's product_name and versions.
type Identity struct {
	Product, Version string
}

// DefaultIdentity is RabbitMQ 3.10.8, whose behaviour Warren follows:
// clients branch on product == "RabbitMQ" (kombu's prefetch handling, some
// client test suites), so Warren reports it and says it is Warren in the
// platform and information properties.
var DefaultIdentity = Identity{Product: "RabbitMQ", Version: "3.10.8"}

// TLSConfig is the AMQPS listener's settings (RabbitMQ's ssl_options).
type TLSConfig struct {
	// Listen is the TCP address of the TLS listener, e.g. ":5671"; "" disables it.
	Listen string
	// CertFile and KeyFile are the server's PEM certificate chain and key.
	CertFile, KeyFile string
	// CAFile holds the PEM certificates that client certificates must chain to.
	CAFile string
	// VerifyPeer asks clients for a certificate and verifies any they send
	// against CAFile (RabbitMQ's verify_peer). A verified certificate allows
	// the EXTERNAL mechanism, which logs in as the user named by its CN.
	VerifyPeer bool
	// FailIfNoPeerCert refuses clients without a valid certificate; it needs VerifyPeer.
	FailIfNoPeerCert bool
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

// DefaultConfig returns the settings of configs/warren.yaml, for tests and embedding.
func DefaultConfig() Config {
	return Config{
		Listen:            ":5672",
		DataDir:           "./data",
		QueueMemoryBudget: 32 << 20,
		FrameMax:          131072,
		ChannelMax:        2047,
		Heartbeat:         60 * time.Second,
		MaxMessageSize:    128 << 20,
		ConsumerTimeout:   30 * time.Minute,
		HandshakeTimeout:  10 * time.Second,
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
		Identity:      DefaultIdentity,
	}
}

// Identity returns what the server reports itself as.
func (s *Server) Identity() Identity {
	if s.cfg.Identity.Product == "" || s.cfg.Identity.Version == "" {
		return DefaultIdentity
	}
	return s.cfg.Identity
}

// loopbackOnly says whether user may connect only from a loopback address.
func (s *Server) loopbackOnly(user string) bool {
	if s.cfg.LoopbackUsers == nil {
		return user == "guest"
	}
	return slices.Contains(s.cfg.LoopbackUsers, user)
}
