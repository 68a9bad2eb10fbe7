package amqp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"time"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/broker"
)

// serverProperties is what connection.start advertises; the capabilities
// are RabbitMQ's, which clients check before using an extension. product
// and version are the configured identity (RabbitMQ 3.10.8 by default, since
// clients branch on them); platform and information say it is Warren.
// cluster_name is the broker's (the cluster_name global parameter).
func serverProperties(id Identity, clusterName string) wire.Table {
	return wire.Table{
		"product":      id.Product,
		"version":      id.Version,
		"platform":     "Warren " + broker.Version + " on Go " + runtime.Version(),
		"copyright":    "Copyright (c) the Warren authors",
		"information":  "Warren " + broker.Version + ", an AMQP 0-9-1 broker compatible with RabbitMQ 3.10",
		"cluster_name": clusterName,
		"capabilities": wire.Table{
			"publisher_confirms":           true,
			"exchange_exchange_bindings":   true,
			"basic.nack":                   true,
			"consumer_cancel_notify":       true,
			"connection.blocked":           true,
			"consumer_priorities":          true,
			"authentication_failure_close": true,
			"per_consumer_qos":             true,
			"direct_reply_to":              true,
		},
	}
}

// handshake runs start, tune and open. On success the connection is ready
// for channels.
func (c *conn) handshake() error {
	mechanisms := "PLAIN AMQPLAIN"
	if c.peerName = peerName(c.nc); c.peerName != "" {
		// As RabbitMQ with rabbitmq_auth_mechanism_ssl: only a verified
		// client certificate makes EXTERNAL available.
		mechanisms += " EXTERNAL"
	}
	c.sendRaw(&wire.ConnectionStart{
		VersionMajor:     0,
		VersionMinor:     9,
		ServerProperties: serverProperties(c.srv.Identity(), c.srv.Broker().ClusterName()),
		Mechanisms:       mechanisms,
		Locales:          "en_US",
	}, 0)

	m, err := c.expect()
	if err != nil {
		return err
	}
	startOk, ok := m.(*wire.ConnectionStartOk)
	if !ok {
		return methodError(m, wire.CommandInvalid, "expected 'connection.start_ok', got '%s'", m.Name())
	}
	authFailureClose := false
	c.startOK, c.clientProps, c.mechanism = true, startOk.ClientProperties, startOk.Mechanism
	if caps, ok := startOk.ClientProperties["capabilities"].(wire.Table); ok {
		c.cancelNotify, _ = caps["consumer_cancel_notify"].(bool)
		c.blockedNotify, _ = caps["connection.blocked"].(bool)
		authFailureClose, _ = caps["authentication_failure_close"].(bool)
	}
	if err := c.authenticate(startOk.Mechanism, startOk.Response); err != nil {
		if err == errLoginRefused && authFailureClose {
			// Only a client that says it understands gets connection.close,
			// with no detail, as RabbitMQ does; the others are dropped.
			return newError(wire.AccessRefused, "Login was refused using authentication mechanism %s. For details see the broker logfile.", startOk.Mechanism)
		}
		return errSilentClose
	}

	hb := uint16(c.srv.cfg.Heartbeat / time.Second)
	c.sendRaw(&wire.ConnectionTune{ChannelMax: c.channelMax, FrameMax: c.frameMax, Heartbeat: hb}, 0)
	if m, err = c.expect(); err != nil {
		return err
	}
	tuneOk, ok := m.(*wire.ConnectionTuneOk)
	if !ok {
		return methodError(m, wire.CommandInvalid, "expected 'connection.tune_ok', got '%s'", m.Name())
	}
	if err := c.tune(tuneOk); err != nil {
		return err
	}

	// The deadline set at connect still runs: the whole handshake, up to
	// connection.open, must fit in the handshake timeout.
	if m, err = c.expect(); err != nil {
		return err
	}
	open, ok := m.(*wire.ConnectionOpen)
	if !ok {
		return methodError(m, wire.CommandInvalid, "expected 'connection.open', got '%s'", m.Name())
	}
	vh := c.srv.broker.VHost(open.VirtualHost)
	if vh == nil {
		return methodError(m, wire.NotAllowed, "vhost %s not found", open.VirtualHost)
	}
	if !c.user.HasVHost(vh.Name) {
		return methodError(m, wire.NotAllowed, "access to vhost '%s' refused for user '%s'", vh.Name, c.user.Name())
	}
	if limit := c.srv.cfg.MaxConnections; limit > 0 {
		// Counted here, as RabbitMQ does: clients still in the handshake are
		// bounded by the handshake timeout instead.
		if c.srv.open.Add(1) > int64(limit) {
			c.srv.open.Add(-1)
			return methodError(m, wire.NotAllowed, "connection refused: node connection limit (%d) is reached", limit)
		}
		c.counted = true
	}
	if err := vh.Connect(c.user.Name()); err != nil {
		pe := asProtoError(err)
		pe.classID, pe.methodID = m.ClassID(), m.MethodID()
		return pe
	}
	// The user's connection limit after the vhost's, as RabbitMQ checks.
	if err := c.user.Connect(); err != nil {
		vh.Disconnect()
		pe := asProtoError(err)
		pe.classID, pe.methodID = m.ClassID(), m.MethodID()
		return pe
	}
	c.userCounted = true
	c.vh = vh
	c.sendRaw(&wire.ConnectionOpenOk{}, 0)
	_ = c.nc.SetReadDeadline(time.Time{})
	c.open.Store(true)
	c.srv.totals.connsOpened.Add(1)
	// Deleting a vhost or a user takes it out of the registry, then closes
	// the open connections. One that opened meanwhile was not listed, so it
	// looks now: one of the two sees the other (both are atomics).
	if c.srv.broker.VHost(vh.Name) != vh {
		return newError(wire.ConnectionForced, "vhost '%s' is deleted", vh.Name)
	}
	if _, direct := c.nc.(*directConn); !direct && c.srv.broker.Account(c.user.Name()) != c.user {
		return newError(wire.ConnectionForced, "user '%s' is deleted", c.user.Name())
	}
	return nil
}

// expect reads the next method on channel 0, skipping heartbeats.
func (c *conn) expect() (wire.Method, error) {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.readFailed(err)
			return nil, errConnectionDone
		}
		switch {
		case f.Type == wire.FrameHeartbeat:
			continue
		case f.Type != wire.FrameMethod || f.Channel != 0:
			return nil, newError(wire.UnexpectedFrame, "unexpected frame type %d on channel %d during handshake", f.Type, f.Channel)
		}
		m, err := c.dec.Decode(f.Payload)
		if err != nil {
			return nil, newError(wire.FrameError, "cannot decode method frame: %v", err)
		}
		if cl, ok := m.(*wire.ConnectionClose); ok {
			_ = cl
			c.sendRaw(&wire.ConnectionCloseOk{}, 0)
			return nil, errConnectionDone
		}
		return m, nil
	}
}

// Why a login failed, for handshake to answer as RabbitMQ does.
var (
	// errLoginRefused: the credentials were checked and refused.
	errLoginRefused = errors.New("login refused")
	// errSilentClose: the client gets no answer; the connection is dropped
	// after silentCloseDelay (an unknown mechanism, a malformed response, or
	// a refused login without authentication_failure_close).
	errSilentClose = errors.New("connection dropped without an answer")
)

// authenticate checks the credentials: errLoginRefused for a wrong user or
// password (or a user that may only connect from localhost), errSilentClose
// for a response that is not one.
func (c *conn) authenticate(mechanism, response string) error {
	var a *broker.Account
	var user string
	switch mechanism {
	case "EXTERNAL":
		// Offered only with a verified client certificate, whose CN names
		// the user; there is no password. The response (an authorization
		// identity) is ignored, as RabbitMQ does.
		if c.peerName == "" {
			return errSilentClose
		}
		user = c.peerName
		if d, ok := c.nc.(*directConn); ok {
			user, a = DirectUser, directAccount(d.vhost)
		} else {
			a = c.srv.broker.Account(user)
		}
	case "PLAIN", "AMQPLAIN":
		var password string
		var ok bool
		user, password, ok = parseCredentials(mechanism, response)
		if !ok {
			return errSilentClose
		}
		if a = c.srv.broker.Account(user); a != nil && !a.Check(password) {
			a = nil
		}
		if a == nil {
			c.emitLogin(user, mechanism, false)
		}
	default:
		return errSilentClose
	}
	if a == nil {
		c.log.Info("authentication failed", "user", user, "mechanism", mechanism)
		c.srv.broker.AuthAttempt(broker.ProtocolAMQP, false)
		return errLoginRefused
	}
	if !c.srv.broker.RemoteAllowed(user, c.nc.RemoteAddr()) {
		c.log.Info("authentication failed: user can only connect via localhost", "user", user)
		c.srv.broker.AuthAttempt(broker.ProtocolAMQP, false)
		return errLoginRefused
	}
	c.srv.broker.AuthAttempt(broker.ProtocolAMQP, true)
	c.user = a
	c.emitLogin(user, mechanism, true)
	return nil
}

// parseCredentials reads the start-ok response for PLAIN or AMQPLAIN.
func parseCredentials(mechanism, response string) (user, password string, ok bool) {
	switch mechanism {
	case "PLAIN":
		// authzid NUL authcid NUL password
		parts := bytes.Split([]byte(response), []byte{0})
		if len(parts) != 3 {
			return "", "", false
		}
		return string(parts[1]), string(parts[2]), true
	case "AMQPLAIN":
		// A field table without its length prefix.
		b := binary.BigEndian.AppendUint32(nil, uint32(len(response)))
		t, _, err := wire.DecodeTable(append(b, response...))
		if err != nil {
			return "", "", false
		}
		u, ok1 := t["LOGIN"].(string)
		p, ok2 := t["PASSWORD"].(string)
		return u, p, ok1 && ok2
	}
	return "", "", false
}

// tune applies the client's tune-ok within the server's limits.
func (c *conn) tune(t *wire.ConnectionTuneOk) error {
	if t.FrameMax != 0 && t.FrameMax < frameMinSize {
		return methodError(t, wire.NotAllowed, "frame_max=%d < %d min size", t.FrameMax, frameMinSize)
	}
	if t.FrameMax > c.frameMax {
		return methodError(t, wire.NotAllowed, "frame_max=%d > %d max size", t.FrameMax, c.frameMax)
	}
	if t.ChannelMax > c.channelMax {
		return methodError(t, wire.NotAllowed, "channel_max=%d > %d max", t.ChannelMax, c.channelMax)
	}
	if t.FrameMax != 0 {
		c.frameMax = t.FrameMax
		c.fr.SetFrameMax(t.FrameMax)
	}
	if t.ChannelMax != 0 {
		c.channelMax = t.ChannelMax
	}
	c.heartbeat = time.Duration(t.Heartbeat) * time.Second
	c.hb.Store(int64(c.heartbeat))
	c.wakeWriter() // let the writer start its heartbeat ticker
	return nil
}

// frameMinSize is the smallest frame_max a client may ask for. RabbitMQ 3.10
// uses the 0-9-1 document's 4096; the newer spec data says 8192.
const frameMinSize = 4096
