// Package amqp is Warren's AMQP 0-9-1 server: the listener, connections and
// channels. It turns frames into calls on virtual hosts and queues, and maps
// their errors to RabbitMQ's reply codes and texts (errors.go is the one
// place that happens). The codec lives in amqp/wire.
//
// # Goroutines
//
// Each connection has a reader goroutine, which parses frames and runs
// channel methods inline (channels are plain structs, not goroutines), and a
// writer goroutine, which flushes the connection's outbound buffer in one
// write per batch. Queues deliver on whatever goroutine pushed the message
// (a publisher's reader, a timer): they append frames to the consumer's
// outbound buffer and wake its writer, except while a reader works through
// the publishes and acks of one socket read: then the reader writes the
// connections it gave output to itself, one non-blocking write each, when
// that read is parsed (flush.go), so light traffic costs no goroutine
// switch per message. Nobody writes to a socket while holding a lock other
// than the connection's write lock.
//
// # Lock order
//
// docs/locks.md lists every mutex of every package, what it guards and the
// one order for the whole tree. Here: a connection's channel map (conn.mu)
// is taken alone; channel.mu may be taken under a queue's lock (delivery)
// and conn.outMu under channel.mu; channel code never calls into a queue
// while holding channel.mu, and nobody writes to a socket while holding a
// lock. Logins and permission checks take no lock (broker/registry.go).
package amqp
