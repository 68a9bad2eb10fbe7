package amqp

import (
	"time"

	"github.com/warrenmq/warren/broker"
)

// Config is everything an AMQP node needs to run: the broker's settings
// (embedded: storage, limits, alarms, users and vhosts) and the protocol
// server's. It is plain data: the command line fills it in from the
// configs package, so that tests can build one by hand.
type Config struct {
	broker.Config

	// Listen is the TCP address of the AMQP listener, e.g. ":5672".
	Listen string
	// TLS configures the AMQPS listener; it is off when TLS.Listen is empty.
	TLS TLSConfig

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
	// HandshakeTimeout drops a client that has not opened its connection
	// this long after connecting (RabbitMQ's handshake_timeout); 0 means 10s.
	HandshakeTimeout time.Duration

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

// DefaultConfig returns the settings of configs/warren.yaml, for tests and embedding.
func DefaultConfig() Config {
	return Config{
		Config:           broker.DefaultConfig(),
		Listen:           ":5672",
		FrameMax:         131072,
		ChannelMax:       2047,
		Heartbeat:        60 * time.Second,
		MaxMessageSize:   128 << 20,
		ConsumerTimeout:  30 * time.Minute,
		HandshakeTimeout: 10 * time.Second,
		Identity:         DefaultIdentity,
	}
}

// Identity returns what the server reports itself as.
func (s *Server) Identity() Identity {
	if s.cfg.Identity.Product == "" || s.cfg.Identity.Version == "" {
		return DefaultIdentity
	}
	return s.cfg.Identity
}
