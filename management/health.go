package management

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/warrenmq/warren/amqp"
)

// Health checks: RabbitMQ 3.10's /api/health/checks/* and the older
// /api/healthchecks/node, computed from the node's state. A failed check
// answers 503 with RabbitMQ's body, so monitoring that reads either the
// status or the JSON sees what it would see with RabbitMQ.

// healthFailed is the status of a failed check (RabbitMQ's
// HEALTH_CHECK_FAILURE_STATUS).
const healthFailed = http.StatusServiceUnavailable

// routeHealth serves /api/health/checks/...; segs[0] is "health".
func (a *API) routeHealth(q *request) {
	s := q.segs
	if len(s) < 3 || s[1] != "checks" {
		notFound(q.w)
		return
	}
	check, args := s[2], s[3:]
	var h func(*request, []string)
	want := 0
	switch check {
	case "alarms":
		h = func(q *request, _ []string) { a.alarmsCheck(q, "There are alarms in effect in the cluster") }
	case "local-alarms":
		h = func(q *request, _ []string) { a.alarmsCheck(q, "There are alarms in effect on the node") }
	case "certificate-expiration":
		h, want = a.certificateCheck, 2
	case "port-listener":
		h, want = a.portCheck, 1
	case "protocol-listener":
		h, want = a.protocolCheck, 1
	case "virtual-hosts":
		h = a.vhostsCheck
	case "node-is-mirror-sync-critical", "node-is-quorum-critical":
		// A single node: nothing can lose its mirrors or its quorum by
		// stopping it, and RabbitMQ says so.
		h = func(q *request, _ []string) {
			writeJSON(q.w, 200, struct {
				Status string `json:"status"`
				Reason string `json:"reason"`
			}{"ok", "single node cluster"})
		}
	default:
		notFound(q.w)
		return
	}
	if len(args) != want {
		notFound(q.w)
		return
	}
	get(q, func(q *request) { h(q, args) })
}

// alarm is one entry of a failed alarms check (rabbit_alarm:format_as_map).
type alarm struct {
	Node     string `json:"node"`
	Resource string `json:"resource"`
}

// currentAlarms are the resource alarms in effect, as RabbitMQ names them.
func (a *API) currentAlarms() []alarm {
	memory, disk := a.broker.Alarms()
	var out []alarm
	if memory {
		out = append(out, alarm{a.node, "memory"})
	}
	if disk {
		out = append(out, alarm{a.node, "disk space"})
	}
	return out
}

// alarmsCheck fails while a resource alarm is on. The cluster and the node
// are the same thing here; only the reason differs, as in RabbitMQ.
func (a *API) alarmsCheck(q *request, reason string) {
	al := a.currentAlarms()
	if len(al) == 0 {
		writeJSON(q.w, 200, map[string]string{"status": "ok"})
		return
	}
	writeJSON(q.w, healthFailed, struct {
		Alarms []alarm `json:"alarms"`
		Reason string  `json:"reason"`
		Status string  `json:"status"`
	}{al, reason, "failed"})
}

func (a *API) portCheck(q *request, args []string) {
	port, err := strconv.Atoi(args[0])
	if err != nil {
		badRequest(q.w, "Invalid port")
		return
	}
	ls := a.srv.Listeners()
	ports := make([]int, 0, len(ls))
	for _, l := range ls {
		if l.Port() == port {
			writeJSON(q.w, 200, struct {
				Status string `json:"status"`
				Port   int    `json:"port"`
			}{"ok", port})
			return
		}
		ports = append(ports, l.Port())
	}
	writeJSON(q.w, healthFailed, struct {
		Status  string `json:"status"`
		Reason  string `json:"reason"`
		Missing int    `json:"missing"`
		Ports   []int  `json:"ports"`
	}{"failed", "No active listener", port, ports})
}

// protocolAliases are the other names RabbitMQ's protocol-listener check
// accepts for the protocols Warren serves (rabbit_mgmt_wm_health_check_
// protocol_listener:normalize_protocol); any other name is looked up as is.
var protocolAliases = map[string]string{
	"amqp091": "amqp", "amqp0.9.1": "amqp", "amqp0-9-1": "amqp", "amqp0_9_1": "amqp",
	"amqp10": "amqp", "amqp1.0": "amqp", "amqp1-0": "amqp", "amqp1_0": "amqp",
	"amqps": "amqp/ssl",
	"http1": "http", "http1.1": "http", "http_api": "http", "management": "http", "management_ui": "http", "ui": "http",
	"cli": "clustering", "distribution": "clustering",
}

func (a *API) protocolCheck(q *request, args []string) {
	proto := strings.ToLower(args[0])
	if p, ok := protocolAliases[proto]; ok {
		proto = p
	}
	ls := a.srv.Listeners()
	protos := make([]string, 0, len(ls))
	for _, l := range ls {
		if l.Protocol == proto {
			writeJSON(q.w, 200, struct {
				Status   string `json:"status"`
				Protocol string `json:"protocol"`
			}{"ok", proto})
			return
		}
		protos = append(protos, l.Protocol)
	}
	writeJSON(q.w, healthFailed, struct {
		Status    string   `json:"status"`
		Reason    string   `json:"reason"`
		Missing   string   `json:"missing"`
		Protocols []string `json:"protocols"`
	}{"failed", "No active listener", proto, protos})
}

// vhostsCheck fails if a virtual host the node knows of is not serving: its
// name is registered but it has no running vhost behind it, or it is being
// deleted.
func (a *API) vhostsCheck(q *request, _ []string) {
	var down []string
	for _, name := range a.broker.VHostNames() {
		if v := a.broker.VHost(name); v == nil || v.Deleted() {
			down = append(down, name)
		}
	}
	if len(down) == 0 {
		writeJSON(q.w, 200, map[string]string{"status": "ok"})
		return
	}
	writeJSON(q.w, healthFailed, struct {
		Status string   `json:"status"`
		Reason string   `json:"reason"`
		VHosts []string `json:"virtual-hosts"`
	}{"failed", "Some virtual hosts are down", down})
}

// Seconds per unit of the certificate-expiration check, as RabbitMQ counts
// them (a month is a twelfth of 365 days).
var expiryUnits = map[string]float64{
	"days": 86400, "weeks": 7 * 86400, "months": 86400 * 365 / 12, "years": 86400 * 365,
}

// expiring is one listener of a failed certificate-expiration check.
type expiring struct {
	CACertFile          string `json:"cacertfile"`
	CACertFileExpiresOn any    `json:"cacertfile_expires_on"`
	CertFile            string `json:"certfile"`
	CertFileExpiresOn   any    `json:"certfile_expires_on"`
	Interface           string `json:"interface"`
	Node                string `json:"node"`
	Port                int    `json:"port"`
	Protocol            string `json:"protocol"`
}

// certificateCheck fails if a TLS listener's certificate or CA file holds a
// certificate that expires within the given time (or cannot be read).
func (a *API) certificateCheck(q *request, args []string) {
	n, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil {
		badRequest(q.w, "Invalid expiration value.")
		return
	}
	unit, ok := expiryUnits[strings.ToLower(args[1])]
	if !ok {
		badRequest(q.w, "Time unit not recognised. Supported units: days, weeks, months, years.")
		return
	}
	deadline := time.Now().Add(time.Duration(float64(n) * unit * float64(time.Second)))
	var out []expiring
	for _, l := range a.srv.Listeners() {
		cert, certOK := expiringCerts(l.CertFile, deadline)
		ca, caOK := expiringCerts(l.CAFile, deadline)
		if certOK && caOK {
			continue
		}
		out = append(out, expiring{
			CACertFile: l.CAFile, CACertFileExpiresOn: ca,
			CertFile: l.CertFile, CertFileExpiresOn: cert,
			Interface: l.IP(), Node: a.node, Port: l.Port(), Protocol: l.Protocol,
		})
	}
	if len(out) == 0 {
		writeJSON(q.w, 200, map[string]string{"status": "ok"})
		return
	}
	writeJSON(q.w, healthFailed, struct {
		Status  string     `json:"status"`
		Reason  string     `json:"reason"`
		Expired []expiring `json:"expired"`
	}{"failed", "Certificates expiring", out})
}

// expiringCerts reads a PEM file and lists when its certificates that end
// before deadline end ("2026-01-02 3:04:05", RabbitMQ's format), or an error
// (an {"error": ...} object). ok is true when there is nothing to report,
// including when there is no file.
func expiringCerts(path string, deadline time.Time) (report any, ok bool) {
	if path == "" {
		return []string{}, true
	}
	fail := func(reason string) (any, bool) { return map[string]string{"error": reason}, false }
	data, err := os.ReadFile(path)
	if err != nil {
		return fail(err.Error())
	}
	var ends []string
	found := false
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		found = true
		if b.Type != "CERTIFICATE" {
			return fail(fmt.Sprintf("The certificate file provided contains a '%s' entry", pemTypeName(b.Type)))
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return fail(err.Error())
		}
		if c.NotBefore.After(time.Now()) {
			return fail("Certificate is not yet valid")
		}
		if c.NotAfter.Before(deadline) {
			t := c.NotAfter.UTC()
			ends = append(ends, fmt.Sprintf("%d-%02d-%02d %d:%02d:%02d", t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second()))
		}
	}
	if !found {
		return fail("The certificate file provided does not contain any PEM entry.")
	}
	return nonNil(ends), len(ends) == 0
}

// pemTypeName is the name Erlang's public_key gives a PEM entry type
// ("RSA PRIVATE KEY" is 'RSAPrivateKey'), which RabbitMQ's message shows.
func pemTypeName(t string) string {
	switch t {
	case "PRIVATE KEY":
		return "PrivateKeyInfo"
	case "ENCRYPTED PRIVATE KEY":
		return "EncryptedPrivateKeyInfo"
	case "PUBLIC KEY":
		return "SubjectPublicKeyInfo"
	}
	var b strings.Builder
	for _, w := range strings.Fields(strings.ToLower(t)) {
		switch w {
		case "rsa", "ec", "dsa":
			b.WriteString(strings.ToUpper(w))
		default:
			r := []rune(w)
			r[0] = unicode.ToUpper(r[0])
			b.WriteString(string(r))
		}
	}
	return b.String()
}

// nodeCheck is the old /api/healthchecks/node[/NODE]: it fails on a
// resource alarm, with the reason rabbit_health_check gives.
func (a *API) nodeCheck(q *request) {
	if len(q.segs) > 3 || len(q.segs) < 2 || q.segs[1] != "node" || (len(q.segs) == 3 && q.segs[2] != a.node) {
		notFound(q.w)
		return
	}
	al := a.currentAlarms()
	if len(al) == 0 {
		writeJSON(q.w, 200, map[string]string{"status": "ok"})
		return
	}
	terms := make([]string, len(al))
	for i, x := range al {
		res := "memory"
		if x.Resource == "disk space" {
			res = "disk"
		}
		terms[i] = fmt.Sprintf("{{resource_limit,%s,%s},[]}", res, erlangAtom(x.Node))
	}
	writeJSON(q.w, healthFailed, struct {
		Status string `json:"status"`
		Reason string `json:"reason"`
	}{"failed", "resource alarm(s) in effect:[" + strings.Join(terms, ",") + "]"})
}

// erlangAtom writes a node name as Erlang's ~p prints an atom: quoted
// unless it is a lower-case word of letters, digits, _ and @.
func erlangAtom(s string) string {
	plain := s != "" && s[0] >= 'a' && s[0] <= 'z'
	for _, r := range s {
		if !(r == '_' || r == '@' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			plain = false
		}
	}
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}

// listenerJSON is a listener as /api/overview lists it.
func (a *API) listenerJSON(l amqp.Listener) map[string]any {
	return map[string]any{"node": a.node, "protocol": l.Protocol, "ip_address": l.IP(), "port": l.Port(), "socket_opts": []any{}}
}

func (a *API) listenersJSON() []map[string]any {
	ls := a.srv.Listeners()
	out := make([]map[string]any, len(ls))
	for i, l := range ls {
		out[i] = a.listenerJSON(l)
	}
	return out
}
