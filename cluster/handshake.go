package cluster

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Handshake statuses.
const (
	statusOK      = 0
	statusRefused = 1
)

// Labels of the two proofs, so that one side's proof is never the other's.
const (
	labelAcceptor = "warren cluster v1 acceptor"
	labelDialler  = "warren cluster v1 dialler"
)

// proof is the HMAC that shows knowledge of the secret for one handshake.
func proof(secret []byte, label, cluster, dialler, acceptor string, nd, na []byte) []byte {
	m := hmac.New(sha256.New, secret)
	for _, s := range []string{label, cluster, dialler, acceptor} {
		m.Write([]byte{byte(len(s))})
		m.Write([]byte(s))
	}
	m.Write(nd)
	m.Write(na)
	return m.Sum(nil)
}

func appendString(b []byte, s string) []byte {
	return append(append(b, byte(len(s))), s...)
}

func readString(r io.Reader) (string, error) {
	var n [1]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return "", err
	}
	b := make([]byte, n[0])
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return string(b), nil
}

func readMagic(r io.Reader) error {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return err
	}
	if [4]byte(h[:4]) != magic {
		return errors.New("not a Warren node (bad magic)")
	}
	if h[4] != version {
		return fmt.Errorf("inter-node protocol version %d, this node speaks %d", h[4], version)
	}
	return nil
}

// handshakeDial runs the dialler's side against the peer p expects.
func (t *Transport) handshakeDial(c net.Conn, p Peer) error {
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	defer c.SetDeadline(time.Time{})
	nd := make([]byte, nonceSize)
	rand.Read(nd)
	hello := append(magic[:], version)
	hello = appendString(hello, t.opts.Cluster)
	hello = appendString(hello, t.opts.Node)
	hello = append(hello, nd...)
	if _, err := c.Write(hello); err != nil {
		return err
	}
	if err := readMagic(c); err != nil {
		return err
	}
	if err := readStatus(c); err != nil {
		return fmt.Errorf("peer %q at %s refused this node: %w", p.Name, p.Addr, err)
	}
	name, err := readString(c)
	if err != nil {
		return err
	}
	na := make([]byte, nonceSize)
	theirs := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, na); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, theirs); err != nil {
		return err
	}
	if name != p.Name {
		return fmt.Errorf("the node at %s is %q, not %q as cluster.peers says", p.Addr, name, p.Name)
	}
	if !hmac.Equal(theirs, proof(t.opts.Secret, labelAcceptor, t.opts.Cluster, t.opts.Node, name, nd, na)) {
		return fmt.Errorf("peer %q failed authentication: its cluster secret differs from this node's (or its cluster name does)", name)
	}
	if _, err := c.Write(proof(t.opts.Secret, labelDialler, t.opts.Cluster, t.opts.Node, name, nd, na)); err != nil {
		return err
	}
	if err := readStatus(c); err != nil {
		return fmt.Errorf("peer %q at %s refused this node: %w", p.Name, p.Addr, err)
	}
	return nil
}

// readStatus reads a status byte, and the reason of a refusal.
func readStatus(r io.Reader) error {
	var st [1]byte
	if _, err := io.ReadFull(r, st[:]); err != nil {
		return err
	}
	if st[0] != statusOK {
		reason, err := readString(r)
		if err != nil {
			return err
		}
		return errors.New(reason)
	}
	return nil
}

// handshakeAccept runs the acceptor's side and returns the dialler's name.
func (t *Transport) handshakeAccept(c net.Conn) (string, error) {
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	defer c.SetDeadline(time.Time{})
	refuse := func(prefix []byte, format string, args ...any) error {
		reason := fmt.Sprintf(format, args...)
		c.Write(appendString(append(prefix, statusRefused), reason[:min(len(reason), maxName)]))
		return errors.New(reason)
	}
	if err := readMagic(c); err != nil {
		return "", err
	}
	cluster, err := readString(c)
	if err != nil {
		return "", err
	}
	name, err := readString(c)
	if err != nil {
		return "", err
	}
	nd := make([]byte, nonceSize)
	if _, err := io.ReadFull(c, nd); err != nil {
		return "", err
	}
	// What needs no secret is refused at once, with its reason, before
	// any proof is made.
	reply := append(magic[:], version)
	switch _, known := t.names[name]; {
	case cluster != t.opts.Cluster:
		return "", refuse(reply, "cluster name %q differs from this node's %q", cluster, t.opts.Cluster)
	case name == t.opts.Node:
		return "", refuse(reply, "node %q has this node's own name", name)
	case !known:
		return "", refuse(reply, "node %q is not in cluster.peers of node %q", name, t.opts.Node)
	}
	na := make([]byte, nonceSize)
	rand.Read(na)
	reply = append(reply, statusOK)
	reply = appendString(reply, t.opts.Node)
	reply = append(reply, na...)
	reply = append(reply, proof(t.opts.Secret, labelAcceptor, t.opts.Cluster, name, t.opts.Node, nd, na)...)
	if _, err := c.Write(reply); err != nil {
		return "", err
	}
	theirs := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, theirs); err != nil {
		return "", fmt.Errorf("node %q hung up during the handshake (its cluster secret differs?): %w", name, err)
	}
	if !hmac.Equal(theirs, proof(t.opts.Secret, labelDialler, t.opts.Cluster, name, t.opts.Node, nd, na)) {
		return "", refuse(nil, "node %q failed authentication: wrong cluster secret", name)
	}
	if _, err := c.Write([]byte{statusOK}); err != nil {
		return "", err
	}
	return name, nil
}
