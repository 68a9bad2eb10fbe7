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
// outbound buffer and wake its writer. Nobody writes to a socket while
// holding a lock.
//
// # Lock order
//
// A lock may be taken while holding the ones above it, never below:
//
//	broker.Broker.opMu    users, vhosts, permissions: one op at a time (Apply);
//	                      DeleteVhost deletes the vhost's queues under it
//	vhost.VHost.mu        definitions; held only for lookups and for q.Stats/q.Touch
//	queue.Queue.mu        a queue's messages and consumers; Consumer.Deliver runs under it
//	channel.mu            a channel's consumers, unacked deliveries, prefetch counters
//	conn.outMu            a connection's outbound buffer
//
// vhost's delays.mu (delayed messages) and dedup.mu (deduplication caches)
// are taken under vhost.VHost.mu or alone, and call nothing while held;
// delays.run (one run of the delayed-message timer at a time) is taken
// before them and routes with none of them held.
// conn.mu (the channel map) and vhost.VHost.replyMu are taken alone;
// Server.mu (listeners, connections) alone or under broker.Broker.opMu, which lists
// the connections to close when a vhost or a user is deleted. Logins and
// permission checks take no lock: the users and vhosts are an immutable
// snapshot behind an atomic pointer (broker/registry.go), and an account's
// credentials and permissions are atomic pointers too. Queue
// hooks (dead-lettering, x-expires) are called with no queue lock held, so a
// dead letter may be pushed to any queue, including back to its source.
// Channel code never calls into a queue while holding channel.mu: it
// collects what to do under the lock, releases it, then calls the queue.
package amqp
