package configs

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// maxNodeName is the longest node or cluster name: the inter-node
// handshake carries names with a one-byte length.
const maxNodeName = 255

// decodeCluster checks the cluster.* settings. Without cluster.peers
// nothing else is required: the node runs alone, as before clustering.
func decodeCluster(cfg *Config, get func(string) string, bad func(key, format string, args ...any) error) error {
	c := &cfg.Cluster
	c.Node = get("cluster.node")
	if c.Node == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			return bad("cluster.node", "empty, and the host name is unknown (%v): set it", err)
		}
		c.Node = host
	}
	if msg := checkNodeName(c.Node); msg != "" {
		return bad("cluster.node", "%s", msg)
	}
	c.Name = get("cluster.name")
	if c.Name == "" || len(c.Name) > maxNodeName {
		return bad("cluster.name", "must be 1 to %d bytes", maxNodeName)
	}
	c.Listen = get("cluster.listen")
	if msg := checkListen(c.Listen); msg != "" {
		return bad("cluster.listen", "%s", msg)
	}
	peers, msg := parsePeers(get("cluster.peers"))
	if msg != "" {
		return bad("cluster.peers", "%s", msg)
	}
	c.Peers = peers
	c.CertFile, c.KeyFile, c.CAFile = get("cluster.tls.cert_file"), get("cluster.tls.key_file"), get("cluster.tls.ca_file")
	if len(peers) == 0 {
		return nil
	}
	self := false
	for _, p := range peers {
		if p.Name == c.Node {
			self = true
		}
	}
	if !self {
		return bad("cluster.peers", "does not name this node %q (cluster.node): list every member, this one included", c.Node)
	}
	secret, file := get("cluster.secret"), get("cluster.secret_file")
	switch {
	case secret != "" && file != "":
		return bad("cluster.secret_file", "set cluster.secret or cluster.secret_file, not both")
	case secret != "":
		c.Secret = []byte(secret)
	case file != "":
		st, err := os.Stat(file)
		if err != nil {
			return bad("cluster.secret_file", "%v", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			// As RabbitMQ refuses a readable Erlang cookie.
			return bad("cluster.secret_file", "%s must be accessible by its owner only (it is %v): chmod 600 it", file, st.Mode().Perm())
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return bad("cluster.secret_file", "%v", err)
		}
		c.Secret = []byte(strings.TrimRight(string(b), "\r\n"))
		if len(c.Secret) == 0 {
			return bad("cluster.secret_file", "%s is empty", file)
		}
	default:
		return bad("cluster.secret", "required with cluster.peers (or cluster.secret_file): the nodes prove to each other that they share it")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return bad("cluster.tls.key_file", "cluster.tls.cert_file and cluster.tls.key_file go together")
	}
	if c.CertFile != "" && c.CAFile == "" {
		return bad("cluster.tls.ca_file", "required with cluster.tls.cert_file: nodes verify each other's certificates")
	}
	if c.CertFile == "" && c.CAFile != "" {
		return bad("cluster.tls.cert_file", "required with cluster.tls.ca_file")
	}
	return nil
}

// checkNodeName reports what is wrong with a node name, or "".
func checkNodeName(name string) string {
	switch {
	case name == "" || len(name) > maxNodeName:
		return fmt.Sprintf("a node name must be 1 to %d bytes (got %q)", maxNodeName, name)
	case strings.ContainsAny(name, "=, \t\r\n"):
		return fmt.Sprintf("a node name cannot hold '=', ',' or spaces (got %q)", name)
	}
	return ""
}

// parsePeers reads NAME=HOST:PORT,... and checks that no member is named
// twice, by name or by address: a list naming a node twice would make it
// two members.
func parsePeers(s string) ([]Peer, string) {
	if strings.TrimSpace(s) == "" {
		return nil, ""
	}
	var peers []Peer
	names, addrs := map[string]bool{}, map[string]string{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		name, addr, ok := strings.Cut(item, "=")
		name, addr = strings.TrimSpace(name), strings.TrimSpace(addr)
		if !ok || name == "" || addr == "" {
			return nil, fmt.Sprintf("must be NAME=HOST:PORT separated by commas (got %q)", item)
		}
		if msg := checkNodeName(name); msg != "" {
			return nil, msg
		}
		host, _, err := net.SplitHostPort(addr)
		if msg := checkListen(addr); msg != "" || err != nil || host == "" {
			return nil, fmt.Sprintf("node %s: address must be HOST:PORT with a host and a numeric port (got %q)", name, addr)
		}
		if names[name] {
			return nil, fmt.Sprintf("names node %q twice", name)
		}
		if other, dup := addrs[addr]; dup {
			return nil, fmt.Sprintf("gives nodes %q and %q the same address %s", other, name, addr)
		}
		names[name], addrs[addr] = true, name
		peers = append(peers, Peer{Name: name, Addr: addr})
	}
	return peers, ""
}
