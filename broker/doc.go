// Package broker is the root of a Warren node's state: it opens storage and
// recovers from it (users, vhosts and permissions first, then the config's
// baseline, then every vhost's definitions and messages), keeps the
// registry of users, vhosts and permissions, authenticates and authorizes,
// watches memory and disk for the resource alarms, and imports and exports
// RabbitMQ definitions.
//
// Every state change is an Op applied by Broker.Apply: memory and disk
// change together or not at all, and an op carries all its inputs, so a
// cluster can replicate ops as log entries. Protocol servers (amqp) and the
// management API sit above it; it knows nothing of frames or sockets, and
// reaches connections only through the ConnectionCloser they register.
package broker
