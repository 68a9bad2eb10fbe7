package amqp

import (
	"net"
	"slices"
)

// Listener is one socket the node serves, as RabbitMQ's management API and
// health checks list it.
type Listener struct {
	// Protocol is RabbitMQ's name for it: "amqp", "amqp/ssl", "http",
	// "http/prometheus".
	Protocol string
	// Addr is the bound address.
	Addr net.Addr
	// CertFile and CAFile are a TLS listener's PEM files, for the
	// certificate-expiration check; "" when there are none.
	CertFile, CAFile string
}

// Port is the listener's TCP port, or 0 if its address has none.
func (l Listener) Port() int {
	if a, ok := l.Addr.(*net.TCPAddr); ok {
		return a.Port
	}
	_, p, err := net.SplitHostPort(l.Addr.String())
	if err != nil {
		return 0
	}
	n, _ := net.LookupPort("tcp", p)
	return n
}

// IP is the listener's address without its port ("::" for every address).
func (l Listener) IP() string {
	if a, ok := l.Addr.(*net.TCPAddr); ok {
		return a.IP.String()
	}
	h, _, err := net.SplitHostPort(l.Addr.String())
	if err != nil {
		return l.Addr.String()
	}
	return h
}

// AddListener records a listener served outside this package (the
// management API, Prometheus) so that Listeners, and with it the health
// checks, see it. The returned func removes it; call it when the listener
// closes.
func (s *Server) AddListener(l Listener) (remove func()) {
	key := new(Listener)
	*key = l
	s.mu.Lock()
	s.extra = append(s.extra, key)
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.extra = slices.DeleteFunc(s.extra, func(x *Listener) bool { return x == key })
	}
}

// Listeners are the sockets being served now: the AMQP listeners Serve and
// ServeTLS accept on, then the ones added with AddListener, in the order
// they started.
func (s *Server) Listeners() []Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Listener, 0, len(s.listeners)+len(s.extra))
	for _, l := range s.listeners {
		out = append(out, *l)
	}
	slices.SortStableFunc(out, func(a, b Listener) int { return a.Port() - b.Port() })
	for _, l := range s.extra {
		out = append(out, *l)
	}
	return out
}
