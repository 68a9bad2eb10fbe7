package broker

import "sync/atomic"

// The protocols whose logins are counted, as rabbitmq_prometheus labels
// them.
const (
	ProtocolAMQP = "amqp091"
	ProtocolHTTP = "http"
)

// authCounters count one protocol's login attempts.
type authCounters struct{ succeeded, failed atomic.Uint64 }

// authAttempts are the login attempts by protocol (rabbit_core_metrics'
// auth_attempt_metrics): a few atomic adds per login, nothing per message.
type authAttempts struct{ amqp, http authCounters }

func (a *authAttempts) of(protocol string) *authCounters {
	if protocol == ProtocolHTTP {
		return &a.http
	}
	return &a.amqp
}

// AuthAttempt counts a login attempt over protocol (ProtocolAMQP or
// ProtocolHTTP) and whether it succeeded.
func (b *Broker) AuthAttempt(protocol string, ok bool) {
	c := b.auth.of(protocol)
	if ok {
		c.succeeded.Add(1)
	} else {
		c.failed.Add(1)
	}
}

// AuthAttemptCount is one protocol's login attempts.
type AuthAttemptCount struct {
	Protocol          string
	Succeeded, Failed uint64
}

// AuthAttempts returns the login attempts of the protocols that had any.
func (b *Broker) AuthAttempts() []AuthAttemptCount {
	var out []AuthAttemptCount
	for _, p := range []string{ProtocolAMQP, ProtocolHTTP} {
		c := b.auth.of(p)
		s, f := c.succeeded.Load(), c.failed.Load()
		if s+f > 0 {
			out = append(out, AuthAttemptCount{Protocol: p, Succeeded: s, Failed: f})
		}
	}
	return out
}
