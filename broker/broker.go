package broker

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/storage"
	"github.com/warrenmq/warren/vhost"
)

// Version is the broker version reported to clients and in exports.
var Version = "0.1.0"

// Broker is the root of one node's state: its storage, users, virtual hosts
// and permissions, and its resource alarms. Protocol servers (amqp) and the
// management API work through it; it knows nothing of frames or sockets.
type Broker struct {
	cfg    Config
	log    *slog.Logger
	store  *storage.Store
	budget *queue.Budget // memory for durable queues' backlogs, shared by every vhost
	// quorum is the quorum queues' engine: one raft driver goroutine and
	// one WAL under DataDir/quorum for every quorum queue; Close stops it.
	quorum *queue.QuorumNode
	alarms alarms
	group  *group // every background goroutine; Close waits for them
	// events publishes to the event exchange (events.go) from a goroutine
	// of the group.
	events *events
	closed atomic.Bool
	// auth counts login attempts by protocol (authattempts.go).
	auth authAttempts

	// reg is the users and virtual hosts, read lock-free (see registry);
	// only Apply replaces it, holding opMu.
	reg atomic.Pointer[registry]
	// opMu serializes the broker's own ops (users, vhosts, permissions):
	// one at a time, memory and storage together.
	opMu sync.Mutex
	// globals are the global runtime parameters by name, replaced whole
	// under opMu and read lock-free.
	globals atomic.Pointer[map[string]json.RawMessage]

	closersMu sync.Mutex // guards closers and params
	closers   []ConnectionCloser
	params    ParameterStore
}

// Options are the broker's collaborators.
type Options struct {
	Log *slog.Logger
}

// ConnectionCloser is what a protocol server registers so that deleting a
// user or a vhost closes the connections that use it, as RabbitMQ does,
// without the broker knowing what a connection is.
type ConnectionCloser interface {
	// CloseConnections closes, with RabbitMQ's CONNECTION_FORCED and reason,
	// every open connection for which match(user, vhost) is true.
	CloseConnections(match func(user, vhost string) bool, reason string)
}

// Open opens the data directory and brings the broker back: stored users,
// vhosts and permissions first, then the config's baseline fills in what is
// missing, then every vhost recovers its definitions and messages. Close
// releases it.
func Open(cfg Config, o Options) (*Broker, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	b := &Broker{cfg: cfg, log: o.Log, group: newGroup(), events: newEvents()}
	b.alarms.changed = make(chan struct{})
	b.alarms.memLimit, b.alarms.diskLimit = cfg.MemoryHighWatermark, cfg.DiskFreeLimit
	store, err := storage.Open(cfg.DataDir, storage.Options{Fault: cfg.StorageFault, JournalSegmentSize: cfg.JournalSegmentSize})
	if err != nil {
		return nil, err
	}
	b.store = store
	b.budget = queue.NewBudget(cfg.QueueMemoryBudget)
	qn, err := queue.OpenQuorumNode(filepath.Join(cfg.DataDir, "quorum"), o.Log.With("part", "quorum"))
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("quorum queues' log: %w", err)
	}
	b.quorum = qn
	fail := func(err error) (*Broker, error) {
		qn.Close()
		store.Close()
		return nil, err
	}
	if err := b.restoreDefinitions(); err != nil {
		return fail(err)
	}
	if err := b.restoreTopicPermissions(); err != nil {
		return fail(err)
	}
	if err := b.restoreGlobals(); err != nil {
		return fail(err)
	}
	if err := b.applyBaseline(); err != nil {
		return fail(err)
	}
	if err := b.recover(); err != nil {
		return fail(err)
	}
	qn.DropOrphans()
	b.reportUnsupportedAlarms()
	b.checkAlarms()
	b.Go(b.watchAlarms)
	b.declareEventExchange()
	b.Go(func() { b.publishEvents(b.Stopping()) })
	return b, nil
}

// Close stops the broker's background work, waits for every background
// goroutine (see Go) and closes its storage. The protocol servers over it
// must have shut down first. Closing again does nothing.
func (b *Broker) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	b.group.stop()
	// Before the store: the engine's last effects may dead-letter into
	// classic queues.
	if err := b.quorum.Close(); err != nil {
		b.log.Error("closing the quorum queues' log", "err", err)
	}
	err := b.store.Close()
	st := b.store.Stats()
	// What the disk did, for performance work (--log.level debug): fsyncs
	// per group commit.
	b.log.Debug("storage closed", "group_commits", st.Commits, "commit_failures", st.Failures,
		"batches", st.Batches, "journal_syncs", st.Journal.Syncs, "journal_bytes", st.Journal.Bytes,
		"bbolt_transactions", st.Applies, "puts_cancelled", st.Cancelled, "journal_records_replayed", st.Replayed)
	return err
}

// RegisterCloser adds a protocol server's connection closer (see
// ConnectionCloser).
func (b *Broker) RegisterCloser(c ConnectionCloser) {
	b.closersMu.Lock()
	b.closers = append(b.closers, c)
	b.closersMu.Unlock()
}

// closeConnections asks every registered closer to close the matching
// connections.
func (b *Broker) closeConnections(match func(user, vhost string) bool, reason string) {
	b.closersMu.Lock()
	cs := slices.Clone(b.closers)
	b.closersMu.Unlock()
	for _, c := range cs {
		c.CloseConnections(match, reason)
	}
}

// recover loads durable definitions and messages. Entries that no queue
// owns (a queue deleted just before a crash, whose entries were still being
// dropped) are deleted afterwards in the background, so they do not delay
// the start.
func (b *Broker) recover() error {
	start := time.Now()
	owned := make(map[string]bool)
	total := 0
	for _, v := range b.VHosts() {
		keys, n, err := v.Recover()
		if err != nil {
			return err
		}
		total += n
		for _, k := range keys {
			owned[k] = true
		}
	}
	b.log.Info("recovered", "messages", total, "took", time.Since(start).Round(time.Millisecond))
	stored, err := b.store.Queues()
	if err != nil {
		return err
	}
	var orphans []string
	for _, k := range stored {
		if !owned[k] {
			orphans = append(orphans, k)
		}
	}
	if len(orphans) > 0 {
		b.Go(func() {
			for _, k := range orphans {
				if err := b.store.DropEntries(k); err != nil {
					b.log.Error("dropping the entries of a deleted queue failed", "err", err)
					return
				}
			}
			b.log.Info("dropped the entries of deleted queues", "queues", len(orphans))
		})
	}
	return nil
}

// VHost returns the named virtual host, or nil.
func (b *Broker) VHost(name string) *vhost.VHost {
	if e := b.reg.Load().vhosts[name]; e != nil {
		return e.v
	}
	return nil
}

// VHosts returns the virtual hosts, sorted by name.
func (b *Broker) VHosts() []*vhost.VHost {
	reg := b.reg.Load()
	names := slices.Sorted(maps.Keys(reg.vhosts))
	out := make([]*vhost.VHost, len(names))
	for i, n := range names {
		out[i] = reg.vhosts[n].v
	}
	return out
}

// Storage is the broker's store, for parts above it that keep records of
// their own next to the definitions (shovels' runtime parameters).
func (b *Broker) Storage() *storage.Store { return b.store }

// Throttle holds a publisher back while the storage committer is behind
// (see storage.Store.Throttle).
func (b *Broker) Throttle() { b.store.Throttle() }

// Throttling reports whether Throttle may hold the caller now.
func (b *Broker) Throttling() bool { return b.store.Throttling() }
