package amqp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
)

// serverTLS builds the crypto/tls configuration for the AMQPS listener.
func (c TLSConfig) serverTLS() (*tls.Config, error) {
	if c.CertFile == "" || c.KeyFile == "" {
		return nil, errors.New("amqp: tls: cert_file and key_file are required")
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("amqp: tls: %w", err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		ClientAuth:   tls.NoClientCert,
	}
	if c.FailIfNoPeerCert && !c.VerifyPeer {
		return nil, errors.New("amqp: tls: fail_if_no_peer_cert needs verify_peer")
	}
	if c.VerifyPeer {
		if c.CAFile == "" {
			return nil, errors.New("amqp: tls: verify_peer needs ca_file")
		}
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("amqp: tls: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("amqp: tls: %s: no PEM certificates", c.CAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if c.FailIfNoPeerCert {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return cfg, nil
}

// ServeTLS accepts AMQPS connections on l, a plain TCP listener, until
// Shutdown. The server must have been built with TLS certificates.
func (s *Server) ServeTLS(l net.Listener) error {
	if s.tls == nil {
		l.Close()
		return errors.New("amqp: ServeTLS: no TLS certificate configured")
	}
	return s.serve(tls.NewListener(l, s.tls), Listener{Protocol: "amqp/ssl", Addr: l.Addr(), CertFile: s.cfg.TLS.CertFile, CAFile: s.cfg.TLS.CAFile})
}

// peerName is the common name of the client's verified certificate, or ""
// when the connection is not TLS or the client sent no certificate. The TLS
// handshake has completed by the time the protocol header was read.
func peerName(nc net.Conn) string {
	if d, ok := nc.(*directConn); ok {
		return DirectUser + "@" + d.vhost // not a user name: authenticate looks for directConn
	}
	tc, ok := nc.(*tls.Conn)
	if !ok {
		return ""
	}
	st := tc.ConnectionState()
	if !st.HandshakeComplete || len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return ""
	}
	return st.VerifiedChains[0][0].Subject.CommonName
}
