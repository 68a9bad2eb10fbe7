package main

import (
	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/configs"
	"github.com/warrenmq/warren/vhost"
)

// rabbitmqDir is where RabbitMQ's configuration files are looked for; the
// tests clear it so that they never read the machine's /etc.
var rabbitmqDir = "/etc/rabbitmq"

// loadConfig reads the configuration (see configs.Load).
// WARREN_RABBITMQ_DIR moves /etc/rabbitmq (empty: read none of it).
func loadConfig(args []string, lookupEnv func(string) (string, bool)) (*configs.Config, error) {
	dir := rabbitmqDir
	if v, ok := lookupEnv("WARREN_RABBITMQ_DIR"); ok {
		dir = v
	}
	return configs.Load(configs.Sources{Args: args, LookupEnv: lookupEnv, RabbitMQDir: dir})
}

// brokerConfig is the broker's part of the configuration.
func brokerConfig(c *configs.Config) amqp.Config {
	cfg := amqp.Config{
		Config: broker.Config{
			DataDir:             c.DataDir,
			VHostLimits:         vhost.Limits{MaxConnections: int64(c.VhostMaxConnections), MaxQueues: int64(c.VhostMaxQueues)},
			QueueMemoryBudget:   c.QueueMemoryBudget,
			MemoryHighWatermark: c.MemoryHighWatermark.Resolve(broker.TotalMemory()),
			DiskFreeLimit:       c.DiskFreeLimit.Resolve(broker.TotalMemory()),
			Vhosts:              c.Vhosts,
			Users:               make([]broker.User, 0, len(c.Users)),
			LoopbackUsers:       c.LoopbackUsers,
		},
		FrameMax:         c.FrameMax,
		ChannelMax:       c.ChannelMax,
		Heartbeat:        c.Heartbeat,
		MaxMessageSize:   c.MaxMessageSize,
		ConsumerTimeout:  c.ConsumerTimeout,
		MaxConnections:   c.MaxConnections,
		HandshakeTimeout: c.HandshakeTimeout,
		TLS: amqp.TLSConfig{
			CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile, CAFile: c.TLS.CAFile,
			VerifyPeer: c.TLS.VerifyPeer, FailIfNoPeerCert: c.TLS.FailIfNoPeerCert,
		},
		Identity: amqp.Identity{Product: c.Identity.Product, Version: c.Identity.Version},
	}
	// The command listens itself (several listeners may be configured);
	// the broker's Listen is only the first, for ListenAndServe.
	if len(c.Listen) > 0 {
		cfg.Listen = c.Listen[0]
	}
	if len(c.TLS.Listen) > 0 {
		cfg.TLS.Listen = c.TLS.Listen[0]
	}
	for _, u := range c.Users {
		perms := make(map[string]broker.Permission, len(u.Permissions))
		for v, p := range u.Permissions {
			perms[v] = broker.Permission{Configure: p.Configure, Write: p.Write, Read: p.Read}
		}
		cfg.Users = append(cfg.Users, broker.User{Name: u.Name, Password: u.Password, PasswordHash: u.PasswordHash,
			Tags: u.Tags, Permissions: perms})
	}
	return cfg
}
