package configs

import (
	"log/slog"
	"time"
)

// Config is Warren's configuration once every source has been read, layered
// and checked. It holds plain values; the warren command turns it into the
// broker's and the listeners' options.
type Config struct {
	// Listen is the AMQP listeners' addresses (amqp.listen). Warren's own
	// sources give one; RabbitMQ's listeners.tcp.* may give several, or none
	// (listeners.tcp = none).
	Listen []string
	// TLS is the AMQPS listeners' settings (amqp.tls.*, ssl_options.*).
	TLS TLS
	// DataDir is where durable state lives (storage.dir).
	DataDir string
	// QueueMemoryBudget is storage.memory_budget, in bytes; 0: no limit.
	QueueMemoryBudget int64
	// HTTPListen, PrometheusListen and PprofListen are the management API's,
	// the metrics' and the profiler's addresses; "" turns one off.
	HTTPListen, PrometheusListen, PprofListen string
	// DefinitionsFile is imported at every start (definitions.import_file,
	// RabbitMQ's load_definitions).
	DefinitionsFile string

	FrameMax         uint32
	ChannelMax       uint16
	Heartbeat        time.Duration
	MaxMessageSize   uint64
	ConsumerTimeout  time.Duration
	MaxConnections   int
	HandshakeTimeout time.Duration
	// VhostMaxConnections and VhostMaxQueues apply to every vhost; 0: no limit.
	VhostMaxConnections, VhostMaxQueues int
	// MemoryHighWatermark and DiskFreeLimit are the resource alarms'
	// thresholds, absolute or relative to the machine's RAM.
	MemoryHighWatermark, DiskFreeLimit Amount

	// Vhosts and Users are the baseline created at start when missing.
	Vhosts []string
	Users  []User
	// LoopbackUsers may only connect from a loopback address (RabbitMQ's
	// loopback_users; guest by default).
	LoopbackUsers []string

	// Identity is what the server says it is to clients.
	Identity Identity
	// LogLevel is the lowest level logged.
	LogLevel slog.Level

	// Cluster is the cluster.* settings.
	Cluster Cluster

	// Plugins is what RabbitMQ's enabled_plugins file named, if one was read.
	Plugins []string
	// Warnings are settings that were read but are not applied (unknown
	// keys, features Warren lacks): one line each, for the log.
	Warnings []string
}

// Cluster is the clustering settings. No Peers: a single node.
type Cluster struct {
	// Node is this node's name (cluster.node, the host name by default).
	Node string
	// Name is the cluster's name (cluster.name).
	Name string
	// Listen is the inter-node listener's address (cluster.listen).
	Listen string
	// Peers are the initial members, this node among them, in the order
	// cluster.peers lists them.
	Peers []Peer
	// Secret is cluster.secret, or what cluster.secret_file holds; set
	// whenever Peers is.
	Secret []byte
	// CertFile, KeyFile and CAFile turn inter-node TLS on (cluster.tls.*).
	CertFile, KeyFile, CAFile string
}

// Peer is a member of cluster.peers.
type Peer struct {
	Name, Addr string
}

// TLS is the AMQPS listeners' settings.
type TLS struct {
	// Listen is the TLS listeners' addresses; none turns TLS off.
	Listen            []string
	CertFile, KeyFile string
	CAFile            string
	VerifyPeer        bool
	FailIfNoPeerCert  bool
}

// Amount is a number of bytes, or a fraction (or multiple) of the
// machine's RAM when OfRAM is set.
type Amount struct {
	Bytes uint64
	OfRAM float64
}

// Resolve returns the amount in bytes on a machine with ram bytes of RAM.
func (a Amount) Resolve(ram uint64) uint64 {
	if a.OfRAM != 0 {
		return uint64(a.OfRAM * float64(ram))
	}
	return a.Bytes
}

// User is a login created at start when missing.
type User struct {
	Name string
	// Password is in clear text; PasswordHash is RabbitMQ's base64 salted
	// SHA-256. Exactly one is set.
	Password, PasswordHash string
	Tags                   []string
	// Permissions maps a vhost to its configure, write and read patterns.
	Permissions map[string]Permission
}

// Permission is RabbitMQ's three permission regular expressions.
type Permission struct {
	Configure, Write, Read string
}

// Identity is the product and version the server reports in
// connection.start and /api/overview.
type Identity struct {
	Product, Version string
}
