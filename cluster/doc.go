// Package cluster connects Warren nodes: the inter-node transport that
// carries raft messages (go.etcd.io/raft/v3's raftpb.Message) for every
// raft group between the members of a cluster.
//
// # Connections
//
// Each node dials every peer at the address its own peer list names for it,
// and only there (never at an address learnt from another node), so that
// inter-node traffic can be routed through proxies. That outbound
// connection carries this node's messages to the peer; the peer's messages
// arrive on the connection the peer dialled. So a pair of nodes has two
// TCP connections, one per direction, whatever the number of groups.
// A lost connection is dialled again with exponential backoff; messages
// meanwhile are dropped and reported to raft (ReportUnreachable), which
// sends again.
//
// # Handshake
//
// The dialling node (A) and the accepting node (B), on plain TCP or TLS:
//
//	A → B  "WRNC", version, cluster name, A's node name, nonce A (32 bytes)
//	B → A  "WRNC", version, status; if 0: B's node name, nonce B, proof B
//	A → B  proof A
//	B → A  status
//
// A status is 0 (go on) or 1 followed by the reason (a length-prefixed
// text). B refuses a different cluster name and a node not in its peer
// list at once, before making any proof; a wrong proof after.
//
// proof X is HMAC-SHA256 keyed by the shared secret over a label naming
// X's role, the cluster name, both node names and both nonces: each side
// proves it knows the secret without sending it, and a proof cannot be
// replayed on another connection (fresh nonces). B refuses a different
// cluster name, a node not in its peer list and a wrong proof; A refuses a
// peer answering with another name than the one its list gives that
// address, or a wrong proof. Each refusal is one log line on the side that
// detects it, naming the node, its address and the reason.
//
// # Frames
//
// After the handshake the dialler sends frames: a 4-byte big-endian length,
// then a batch: a uvarint count, and per message its group (uvarint), its
// length (uvarint) and the marshalled raftpb.Message. Everything Send was
// given for a peer since the last write goes out as one frame (one write),
// so a busy node pays one syscall per peer per batch, not per group.
package cluster
