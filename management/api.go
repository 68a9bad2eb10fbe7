// Package management is Warren's operations side: RabbitMQ's management
// HTTP API (the subset that rabbitmqadmin, rabbit-hole and scripts use), a
// Prometheus endpoint with rabbitmq_prometheus' metric names, and tooling to
// inspect and replay dead letters.
//
// Message rates come from the queues' running totals, sampled by one ticker
// (Options.SampleInterval): a rate is the change of a total between the last
// two samples divided by the time between them. There is no stats database.
//
// Every change, to definitions, users, vhosts and permissions alike, goes
// through broker.Apply, as AMQP's do; the AMQP server is used only to list
// and close connections and channels.
package management

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/shovel"
	"github.com/warrenmq/warren/vhost"
)

// Options configure the API.
type Options struct {
	Log *slog.Logger
	// SampleInterval is how often queue totals are sampled for rates and
	// dead-letter queue growth; 0 means 5s.
	SampleInterval time.Duration
	// Node is the node name shown in replies; "" means warren@<hostname>.
	Node string
	// Shovels serves the shovel parameters and /api/shovels; nil: none.
	Shovels *shovel.Manager
}

// API serves the management HTTP API. Close stops its sampler.
type API struct {
	broker *broker.Broker // users, vhosts, permissions, definitions
	srv    *amqp.Server   // connections and channels
	log    *slog.Logger
	node   string
	stats  *sampler
	// shovels is rabbitmq_shovel's part: nil when the broker runs none.
	shovels *shovel.Manager
	// started is when the API was made: the node's uptime, near enough.
	started time.Time
	// promID makes promIDValue, the Prometheus cluster id, once.
	promID      sync.Once
	promIDValue string
}

// New makes the API for srv and its broker and starts its rate sampler.
func New(srv *amqp.Server, o Options) *API {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.SampleInterval <= 0 {
		o.SampleInterval = 5 * time.Second
	}
	if o.Node == "" {
		h, _ := os.Hostname()
		if h == "" {
			h = "localhost"
		}
		o.Node = "warren@" + h
	}
	a := &API{broker: srv.Broker(), srv: srv, log: o.Log, node: o.Node, shovels: o.Shovels, started: time.Now()}
	a.stats = newSampler(srv, o.SampleInterval, o.Log)
	if o.Shovels != nil {
		a.broker.RegisterParameters(shovelParameters{o.Shovels})
	}
	return a
}

// Close stops the sampler.
func (a *API) Close() { a.stats.stop() }

// user is an authenticated caller.
type user struct {
	name string
	tags []string
}

func (u *user) has(tags ...string) bool {
	for _, t := range tags {
		if slices.Contains(u.tags, t) {
			return true
		}
	}
	return false
}

// admin may change anything; monitoring sees everything; management sees
// the vhosts it has permissions on.
func (u *user) admin() bool { return u.has("administrator") }

// request is one API call, routed.
type request struct {
	w    http.ResponseWriter
	r    *http.Request
	u    *user
	segs []string // unescaped path segments after /api/
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	if !strings.HasPrefix(p, "/api/") && p != "/api" {
		a.serveUI(w, r) // the web UI: "/" and "/ui/..." (ui.go)
		return
	}
	var segs []string
	for _, s := range strings.Split(strings.Trim(strings.TrimPrefix(p, "/api"), "/"), "/") {
		u, err := url.PathUnescape(s)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "bad path encoding")
			return
		}
		segs = append(segs, u)
	}
	name, pw, ok := r.BasicAuth()
	if !ok {
		// As RabbitMQ: no credentials is a bare 401 asking for them.
		w.Header().Set("WWW-Authenticate", `Basic realm="RabbitMQ Management"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	tags, ok := a.broker.Authenticate(name, pw, remoteAddr(r))
	a.broker.AuthAttempt(broker.ProtocolHTTP, ok)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="RabbitMQ Management"`)
		writeError(w, http.StatusUnauthorized, "not_authorized", "Login failed")
		return
	}
	u := &user{name: name, tags: tags}
	if !u.has("administrator", "monitoring", "management", "policymaker") {
		notAuthorised(w, "Not management user")
		return
	}
	req := &request{w: w, r: r, u: u, segs: segs}
	if len(segs) == 0 || segs[0] == "" {
		notFound(w)
		return
	}
	if !a.authorize(req) { // authz.go
		return
	}
	a.route(req)
}

func remoteAddr(r *http.Request) *addr {
	return &addr{s: r.RemoteAddr}
}

// addr is a net.Addr from an http.Request's RemoteAddr.
type addr struct{ s string }

func (a *addr) Network() string { return "tcp" }
func (a *addr) String() string  { return a.s }

// route dispatches on the path.
func (a *API) route(q *request) {
	s := q.segs
	m := q.r.Method
	n := len(s)
	if n == 0 || s[0] == "" {
		notFound(q.w)
		return
	}
	switch s[0] {
	case "overview":
		get(q, a.overview)
	case "whoami":
		get(q, func(q *request) { q.reply(map[string]any{"name": q.u.name, "tags": nonNil(q.u.tags)}) })
	case "nodes":
		get(q, a.nodes)
	case "vhosts":
		a.routeVHosts(q)
	case "users":
		a.routeUsers(q)
	case "permissions":
		a.routePermissions(q)
	case "policies":
		a.routePolicies(q)
	case "parameters":
		a.routeParameters(q)
	case "shovels":
		a.routeShovels(q)
	case "vhost-limits":
		a.routeVhostLimits(q) // limits.go
	case "user-limits":
		a.routeUserLimits(q)
	case "global-parameters":
		a.routeGlobalParameters(q) // globals.go
	case "cluster-name":
		a.routeClusterName(q)
	case "topic-permissions":
		a.routeTopicPermissions(q) // topicperms.go
	case "operator-policies":
		a.routeOperatorPolicies(q) // operator.go
	case "feature-flags":
		get(q, func(q *request) { writeJSON(q.w, 200, []any{}) })
	case "extensions":
		get(q, func(q *request) { writeJSON(q.w, 200, []any{}) })
	case "connections":
		switch {
		case n == 1:
			get(q, a.connections)
		case n == 3 && s[1] == "username":
			if m != http.MethodDelete {
				methodNotAllowed(q.w)
				return
			}
			a.closeUserConnections(q, s[2])
		case n == 2 && m == http.MethodGet:
			a.connection(q, s[1])
		case n == 2 && m == http.MethodDelete:
			a.closeConnection(q, s[1])
		default:
			notFound(q.w)
		}
	case "channels":
		switch n {
		case 1:
			get(q, a.channels)
		case 2:
			get(q, func(q *request) { a.channel(q, s[1]) })
		default:
			notFound(q.w)
		}
	case "consumers":
		if n > 2 {
			notFound(q.w)
			return
		}
		get(q, a.consumers)
	case "exchanges":
		a.routeExchanges(q)
	case "queues":
		a.routeQueues(q)
	case "bindings":
		a.routeBindings(q)
	case "definitions":
		switch m {
		case http.MethodGet:
			a.exportDefinitions(q)
		case http.MethodPost:
			a.importDefinitions(q)
		default:
			methodNotAllowed(q.w)
		}
	case "healthchecks":
		get(q, a.nodeCheck)
	case "health":
		a.routeHealth(q) // health.go
	case "aliveness-test":
		if n != 2 {
			notFound(q.w)
			return
		}
		get(q, a.aliveness)
	default:
		notFound(q.w)
	}
}

func get(q *request, h func(*request)) {
	if q.r.Method != http.MethodGet && q.r.Method != http.MethodHead {
		methodNotAllowed(q.w)
		return
	}
	h(q)
}

// vhost resolves a vhost path segment the caller may see, or writes 404.
func (a *API) vhost(q *request, name string) *vhost.VHost {
	v := a.broker.VHost(name)
	if v == nil || !a.canSee(q.u, name) {
		notFound(q.w)
		return nil
	}
	return v
}

// canSee reports whether u may see vhost name.
func (a *API) canSee(u *user, name string) bool {
	return u.has("administrator", "monitoring") || a.broker.HasVHostAccess(u.name, name)
}

// visibleVHosts are the vhosts u may see, or just the one named by seg (if
// seg is non-empty; ok is false and 404 written when it is not visible).
func (a *API) visibleVHosts(q *request, seg int) ([]*vhost.VHost, bool) {
	if len(q.segs) > seg {
		v := a.vhost(q, q.segs[seg])
		if v == nil {
			return nil, false
		}
		return []*vhost.VHost{v}, true
	}
	var out []*vhost.VHost
	for _, v := range a.broker.VHosts() {
		if a.canSee(q.u, v.Name) {
			out = append(out, v)
		}
	}
	return out, true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, kind, reason string) {
	writeJSON(w, code, map[string]string{"error": kind, "reason": reason})
}

func notFound(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, "Object Not Found", "Not Found")
}

func methodNotAllowed(w http.ResponseWriter) {
	writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed", "Method Not Allowed")
}

func badRequest(w http.ResponseWriter, reason string) {
	writeError(w, http.StatusBadRequest, "bad_request", reason)
}

// brokerError writes a vhost error as RabbitMQ's API does.
func brokerError(w http.ResponseWriter, err error) {
	var ve *vhost.Error
	if errors.As(err, &ve) {
		switch ve.Kind {
		case vhost.NotFound:
			writeError(w, http.StatusNotFound, "not_found", ve.Text)
		case vhost.AccessRefused:
			writeError(w, http.StatusForbidden, "access_refused", ve.Text)
		case vhost.InternalError:
			writeError(w, http.StatusInternalServerError, "internal_error", ve.Text)
		default:
			badRequest(w, ve.Text)
		}
		return
	}
	writeError(w, http.StatusInternalServerError, "internal_error", err.Error())
}

// apply carries out an op for a request and answers with status (none if
// 0), or with RabbitMQ's error. It reports whether the op succeeded.
func (a *API) apply(q *request, op broker.Op, status int) bool {
	if _, err := a.broker.ApplyAs(op, q.u.name); err != nil {
		brokerError(q.w, err)
		return false
	}
	if status != 0 {
		q.w.WriteHeader(status)
	}
	return true
}

// applyIn is apply for a definition op on v.
func (a *API) applyIn(q *request, v *vhost.VHost, op vhost.Op, status int) bool {
	return a.apply(q, broker.VhostOp{Vhost: v.Name, Op: op}, status)
}

// createdOr is 204 for an object that already existed, else 201.
func createdOr(existed bool) int {
	if existed {
		return http.StatusNoContent
	}
	return http.StatusCreated
}

// readBody decodes a JSON body, numbers as json.Number; an empty body is {}.
func readBody(q *request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(q.w, q.r.Body, 64<<20))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		badRequest(q.w, "cannot parse JSON body: "+err.Error())
		return false
	}
	return true
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// exchangeName maps RabbitMQ's URL name of the default exchange.
func exchangeName(s string) string {
	if s == "amq.default" {
		return ""
	}
	return s
}
