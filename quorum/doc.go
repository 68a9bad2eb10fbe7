// Package quorum is the engine of quorum queues: each queue is a raft group
// (go.etcd.io/raft/v3) whose committed log is applied to a deterministic
// state machine modelled on RabbitMQ's rabbit_fifo (State), and a Node
// drives every group of this process.
//
// # The state machine
//
// Commands (enqueue, checkout, cancel, settle, return, discard, purge,
// down) are applied at their raft index; effects come out for the caller to
// act on (deliver message MsgID to a consumer, dead-letter a body with a
// reason) and the proposer gets a Result (reject-publish, purge count).
// Returned messages are served before new ones and count deliveries
// (x-delivery-count); past x-delivery-limit they are dead-lettered.
//
// Messages hold their raft index: their bodies are in the log. Every so
// often the state records a snapshot candidate without bodies; once every
// message it held has left the queue (the lowest live raft index is past
// it), the candidate is a release point: the node snapshots the group there
// and compacts the log, and the WAL deletes segments nobody needs. Replaying
// the log after a release snapshot rebuilds the same state with every live
// body (rabbit_fifo's release cursor).
//
// # The node
//
// One goroutine per node: it proposes each group's batched commands as one
// entry, takes every group's Ready, saves them all through the one WAL
// (storage/raftlog) and waits for its single fdatasync, then applies the
// committed entries and advances. Ticks run on the same goroutine. A group
// is created from a snapshot at index 1 that names its members: on one node
// the node alone (Create), which elects itself at once. With several
// (CreateMembers, on every member alike) raft's messages leave through
// NodeOptions.Transport once durable and arrive through Node.Step; the
// election timeout picks the leader and followers forward proposals to it.
// Without a Transport nothing of this runs.
//
// Lock order: Node.mu only; callbacks and effects run on the node goroutine
// without it, and the WAL's callbacks take no node lock.
//
// Not wired to AMQP yet: queue declaration, channels and the management API
// do not use this package.
package quorum
