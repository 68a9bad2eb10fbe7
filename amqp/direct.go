package amqp

import (
	"errors"
	"net"

	"github.com/warrenmq/warren/broker"
)

// DirectUser is the user of direct connections, as RabbitMQ's internal
// clients (a shovel whose URI names no host) show it.
const DirectUser = "none"

// directConn is the server's end of an in-process connection. It offers
// EXTERNAL, which logs in as DirectUser with full permissions on the one
// vhost it was made for: RabbitMQ's direct connections are trusted, and
// the shovel that opens it was set up by an administrator.
type directConn struct {
	net.Conn
	vhost string
}

var directAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}

func (d *directConn) LocalAddr() net.Addr  { return directAddr }
func (d *directConn) RemoteAddr() net.Addr { return directAddr }

// directAccount is the account a direct connection logs in as.
func directAccount(vh string) *broker.Account { return broker.InternalAccount(DirectUser, vh) }

// DialDirect opens an in-process connection to vhost vh, served like one
// accepted from a listener (counted, closed by Shutdown). The client must
// log in with EXTERNAL.
func (s *Server) DialDirect(vh string) (net.Conn, error) {
	client, server := net.Pipe()
	c := newConn(s, &directConn{Conn: server, vhost: vh})
	if !s.track(c) {
		client.Close()
		server.Close()
		return nil, errors.New("amqp: server closed")
	}
	go func() {
		defer s.wg.Done()
		c.serve()
		s.untrack(c)
	}()
	return client, nil
}
