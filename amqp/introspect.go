package amqp

import (
	"crypto/tls"
	"net"
	"sort"
	"strconv"
	"time"
)

// This file is the read-only view of connections and channels that the
// management API needs, plus the few controls it offers (closing a
// connection); users and vhosts are the broker's (broker/info.go). Snapshots
// are plain values: nothing here hands out a connection or a channel.

// ConnectionInfo is a snapshot of one open connection.
type ConnectionInfo struct {
	// Name is RabbitMQ's connection name: "peer:port -> local:port".
	Name       string
	ID         uint64
	User       string
	VHost      string
	PeerHost   string
	PeerPort   int
	Host       string
	Port       int
	TLS        bool
	Channels   int
	FrameMax   uint32
	ChannelMax uint16
	Heartbeat  int // seconds
	// Socket totals: bytes and reads received, bytes and writes sent, and
	// bytes waiting to be written.
	RecvBytes, RecvCount, SendBytes, SendCount uint64
	PendingBytes                               int
	// ClientProperties are what the client sent in connection.start-ok
	// (shared, not copied: read-only after the handshake).
	ClientProperties map[string]any
	// Mechanism is the SASL mechanism it logged in with; ConnectedAt is
	// when its socket was accepted.
	Mechanism   string
	ConnectedAt time.Time
}

// ChannelInfo is a snapshot of one open channel.
type ChannelInfo struct {
	Connection ConnectionInfo
	Number     uint16
	// Name is RabbitMQ's channel name: "<connection name> (<number>)".
	Name           string
	Consumers      int
	Unacked        int
	GlobalPrefetch int
	// Prefetch is the basic.qos global=false limit for new consumers.
	Prefetch int
	// Unconfirmed counts publishes in confirm mode not yet acked or nacked.
	Unconfirmed int
	// Uncommitted and AcksUncommitted are the open transaction's publishes
	// and acks (ack, nack and reject methods) not yet committed.
	Uncommitted, AcksUncommitted int
	// Totals are the channel's message counts since it opened.
	Totals MessageTotals
}

// ConsumerInfo is a snapshot of one consumer.
type ConsumerInfo struct {
	Channel     ChannelInfo
	Tag         string
	Queue       string
	VHost       string
	AckRequired bool
	Prefetch    int
}

// openConns returns the connections past connection.open; their handshake
// fields (user, vhost, tune values) are read-only from then on.
func (s *Server) openConns() []*conn {
	s.mu.Lock()
	cs := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		if c.open.Load() {
			cs = append(cs, c)
		}
	}
	s.mu.Unlock()
	sort.Slice(cs, func(i, j int) bool { return cs[i].id < cs[j].id })
	return cs
}

func (c *conn) info() ConnectionInfo {
	ci := ConnectionInfo{
		ID: c.id, User: c.user.Name(), VHost: c.vh.Name,
		FrameMax: c.frameMax, ChannelMax: c.channelMax, Heartbeat: int(c.heartbeat.Seconds()),
		ClientProperties: c.clientProps, Mechanism: c.mechanism, ConnectedAt: c.connectedAt,
	}
	ci.PeerHost, ci.PeerPort = splitAddr(c.nc.RemoteAddr())
	ci.Host, ci.Port = splitAddr(c.nc.LocalAddr())
	_, ci.TLS = c.nc.(*tls.Conn)
	ci.RecvBytes, ci.RecvCount = c.io.recvBytes.Load(), c.io.recvCount.Load()
	ci.SendBytes, ci.SendCount = c.io.sendBytes.Load(), c.io.sendCount.Load()
	c.outMu.Lock()
	ci.PendingBytes = len(c.out)
	c.outMu.Unlock()
	ci.Name = net.JoinHostPort(ci.PeerHost, strconv.Itoa(ci.PeerPort)) + " -> " + net.JoinHostPort(ci.Host, strconv.Itoa(ci.Port))
	return ci
}

func splitAddr(a net.Addr) (string, int) {
	if a == nil {
		return "", 0
	}
	h, p, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String(), 0
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// channelsOf returns a connection's channels, sorted by number.
func (c *conn) channelList() []*channel {
	c.mu.Lock()
	chs := make([]*channel, 0, len(c.channels))
	for _, ch := range c.channels {
		chs = append(chs, ch)
	}
	c.mu.Unlock()
	sort.Slice(chs, func(i, j int) bool { return chs[i].id < chs[j].id })
	return chs
}

// Connections returns the open connections, oldest first.
func (s *Server) Connections() []ConnectionInfo {
	cs := s.openConns()
	out := make([]ConnectionInfo, 0, len(cs))
	for _, c := range cs {
		ci := c.info()
		ci.Channels = len(c.channelList())
		out = append(out, ci)
	}
	return out
}

// channelInfo snapshots ch, with its consumers when withConsumers.
func (ch *channel) snapshot(ci ConnectionInfo, withConsumers bool) (ChannelInfo, []ConsumerInfo) {
	info := ChannelInfo{Connection: ci, Number: ch.id, Name: ci.Name + " (" + strconv.Itoa(int(ch.id)) + ")"}
	var cons []ConsumerInfo
	ch.mu.Lock()
	info.Consumers = len(ch.consumers)
	info.Unacked = len(ch.unacked)
	info.GlobalPrefetch = ch.globalPrefetch
	info.Prefetch = int(ch.counts.prefetch.Load())
	info.Totals = ch.counts.load()
	info.Unconfirmed = int(info.Totals.ReceivedConfirm - ch.counts.settled.Load())
	info.Uncommitted, info.AcksUncommitted = int(ch.counts.txPublishes.Load()), int(ch.counts.txSettles.Load())
	if withConsumers {
		for _, cs := range ch.consumers {
			if cs.gone {
				continue
			}
			cons = append(cons, ConsumerInfo{Tag: cs.tag, Queue: cs.q.Declared().Name, VHost: ci.VHost, AckRequired: !cs.noAck, Prefetch: cs.prefetch})
		}
	}
	ch.mu.Unlock()
	for i := range cons {
		cons[i].Channel = info
	}
	return info, cons
}

// eachChannel snapshots every open channel of every open connection; with
// consumers, its consumers too.
func (s *Server) eachChannel(consumers bool, fn func(ChannelInfo, []ConsumerInfo)) {
	for _, c := range s.openConns() {
		chs := c.channelList()
		ci := c.info()
		ci.Channels = len(chs)
		for _, ch := range chs {
			fn(ch.snapshot(ci, consumers))
		}
	}
}

// Channels returns the open channels of every open connection.
func (s *Server) Channels() []ChannelInfo {
	var out []ChannelInfo
	s.eachChannel(false, func(info ChannelInfo, _ []ConsumerInfo) { out = append(out, info) })
	return out
}

// Consumers returns every consumer on every open channel.
func (s *Server) Consumers() []ConsumerInfo {
	var out []ConsumerInfo
	s.eachChannel(true, func(_ ChannelInfo, cons []ConsumerInfo) { out = append(out, cons...) })
	sort.SliceStable(out, func(i, j int) bool { return out[i].Tag < out[j].Tag })
	return out
}

// CloseConnection closes the named connection (ConnectionInfo.Name) with
// 320 CONNECTION_FORCED and the given reason, as the management plugin
// does. It reports whether the connection was found.
func (s *Server) CloseConnection(name, reason string) bool {
	for _, c := range s.openConns() {
		if c.info().Name == name {
			if reason == "" {
				reason = "Closed via management plugin"
			}
			c.log.Info("closing connection", "reason", reason)
			c.forceClose(newError(320, "%s", reason))
			return true
		}
	}
	return false
}

// ConnectionCount is the number of open connections.
func (s *Server) ConnectionCount() int { return len(s.openConns()) }
