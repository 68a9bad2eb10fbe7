package amqp

import "github.com/warrenmq/warren/amqp/wire"

// waitWhileBlocked holds a publishing connection's reader while an alarm
// is on, telling the client with connection.blocked/unblocked if it says it
// understands them. It returns early when the connection is being closed.
func (c *conn) waitWhileBlocked() {
	reason, changed := c.srv.broker.Blocked()
	if reason == "" {
		return
	}
	c.endRun() // nobody else's output may wait for this reader
	if c.blockedNotify {
		c.sendRaw(&wire.ConnectionBlocked{Reason: reason}, 0)
	}
	for reason != "" {
		select {
		case <-changed:
			reason, changed = c.srv.broker.Blocked()
		case <-c.unblockReader:
			return
		}
	}
	if c.blockedNotify {
		c.sendRaw(&wire.ConnectionUnblocked{}, 0)
	}
}
