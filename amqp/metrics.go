package amqp

import (
	"io"
	"sync"
	"sync/atomic"
)

// MessageTotals are message counts since the node started, named after
// RabbitMQ's global counters (rabbitmq_global_messages_*_total).
type MessageTotals struct {
	Received, ReceivedConfirm, Routed          uint64
	UnroutableDropped, UnroutableReturned      uint64
	Confirmed                                  uint64
	DeliveredConsumeManualAck                  uint64
	DeliveredConsumeAutoAck                    uint64
	DeliveredGetManualAck, DeliveredGetAutoAck uint64
	GetEmpty, Redelivered, Acknowledged        uint64
}

// Delivered is every delivery, to consumers and to basic.get.
func (t MessageTotals) Delivered() uint64 {
	return t.DeliveredConsumeManualAck + t.DeliveredConsumeAutoAck + t.DeliveredGetManualAck + t.DeliveredGetAutoAck
}

func (t *MessageTotals) add(o MessageTotals) {
	t.Received += o.Received
	t.ReceivedConfirm += o.ReceivedConfirm
	t.Routed += o.Routed
	t.UnroutableDropped += o.UnroutableDropped
	t.UnroutableReturned += o.UnroutableReturned
	t.Confirmed += o.Confirmed
	t.DeliveredConsumeManualAck += o.DeliveredConsumeManualAck
	t.DeliveredConsumeAutoAck += o.DeliveredConsumeAutoAck
	t.DeliveredGetManualAck += o.DeliveredGetManualAck
	t.DeliveredGetAutoAck += o.DeliveredGetAutoAck
	t.GetEmpty += o.GetEmpty
	t.Redelivered += o.Redelivered
	t.Acknowledged += o.Acknowledged
}

// channelCounts are one channel's message counts. They live on the channel,
// not the server, so that channels on different cores never share a cache
// line; each is written by the goroutine that does the work (the reader, a
// queue delivering, the storage committer confirming) and read by scrapes,
// hence atomics rather than a lock.
type channelCounts struct {
	received, receivedConfirm, routed     atomic.Uint64
	unroutableDropped, unroutableReturned atomic.Uint64
	confirmed                             atomic.Uint64
	consumeManual, consumeAuto            atomic.Uint64
	getManual, getAuto, getEmpty          atomic.Uint64
	redelivered, acked                    atomic.Uint64
	// settled counts confirms sent, acks and nacks: what is left of
	// receivedConfirm is unconfirmed.
	settled atomic.Uint64
	// prefetch mirrors the reader's basic.qos global=false value.
	prefetch atomic.Int64
	// txPublishes and txSettles are the open transaction's publishes and
	// ack, nack and reject methods, not yet committed.
	txPublishes, txSettles atomic.Int64
}

// txReset zeroes the uncommitted counts: the transaction was committed,
// rolled back or closed.
func (c *channelCounts) txReset() {
	c.txPublishes.Store(0)
	c.txSettles.Store(0)
}

func (c *channelCounts) load() MessageTotals {
	return MessageTotals{
		Received: c.received.Load(), ReceivedConfirm: c.receivedConfirm.Load(), Routed: c.routed.Load(),
		UnroutableDropped: c.unroutableDropped.Load(), UnroutableReturned: c.unroutableReturned.Load(),
		Confirmed:                 c.confirmed.Load(),
		DeliveredConsumeManualAck: c.consumeManual.Load(), DeliveredConsumeAutoAck: c.consumeAuto.Load(),
		DeliveredGetManualAck: c.getManual.Load(), DeliveredGetAutoAck: c.getAuto.Load(),
		GetEmpty: c.getEmpty.Load(), Redelivered: c.redelivered.Load(), Acknowledged: c.acked.Load(),
	}
}

// ChurnTotals count connections, channels and queues opened and closed
// since the node started (rabbitmq_*_opened_total and friends).
type ChurnTotals struct {
	ConnectionsOpened, ConnectionsClosed uint64
	ChannelsOpened, ChannelsClosed       uint64
	QueuesDeclared, QueuesCreated        uint64
	QueuesDeleted                        uint64
}

// serverTotals keeps what outlives channels: the counts of closed channels,
// folded in when they close, and the churn counters (bumped on opens and
// closes, never per message).
type serverTotals struct {
	mu      sync.Mutex    // guards retired and every channel's countsRetired
	retired MessageTotals // the counts of channels already closed

	connsOpened, connsClosed      atomic.Uint64
	chansOpened, chansClosed      atomic.Uint64
	queuesDeclared, queuesCreated atomic.Uint64
	queuesDeleted                 atomic.Uint64
}

// retire folds a closing channel's counts into the server's, once. Under
// mu, so that MessageTotals counts each channel either here or live.
func (t *serverTotals) retire(ch *channel) {
	t.mu.Lock()
	if !ch.countsRetired {
		ch.countsRetired = true
		t.retired.add(ch.counts.load())
		t.chansClosed.Add(1)
	}
	t.mu.Unlock()
}

// MessageTotals returns the node's message counts: those of closed channels
// plus those of the open ones.
func (s *Server) MessageTotals() MessageTotals {
	conns := s.openConns()
	s.totals.mu.Lock()
	defer s.totals.mu.Unlock()
	t := s.totals.retired
	for _, c := range conns {
		for _, ch := range c.channelList() {
			if !ch.countsRetired {
				t.add(ch.counts.load())
			}
		}
	}
	return t
}

// Churn returns the node's connection, channel and queue churn counts.
func (s *Server) Churn() ChurnTotals {
	t := &s.totals
	return ChurnTotals{
		ConnectionsOpened: t.connsOpened.Load(), ConnectionsClosed: t.connsClosed.Load(),
		ChannelsOpened: t.chansOpened.Load(), ChannelsClosed: t.chansClosed.Load(),
		QueuesDeclared: t.queuesDeclared.Load(), QueuesCreated: t.queuesCreated.Load(),
		QueuesDeleted: t.queuesDeleted.Load(),
	}
}

// connCounts are a connection's socket totals: bytes and reads on the
// reader goroutine, bytes and writes on the writer, one atomic add per
// syscall rather than per frame.
type connCounts struct {
	recvBytes, recvCount atomic.Uint64
	sendBytes, sendCount atomic.Uint64
}

// countingReader counts what the frame reader takes from the socket.
type countingReader struct {
	r io.Reader
	c *connCounts
}

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.c.recvBytes.Add(uint64(n))
		r.c.recvCount.Add(1)
	}
	return n, err
}
