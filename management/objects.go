package management

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/exchange"
	"github.com/warrenmq/warren/plugins"
	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/vhost"
)

type rate struct {
	Rate float64 `json:"rate"`
}

// messageStats is RabbitMQ's message_stats object for a queue.
type messageStats struct {
	Publish             uint64 `json:"publish"`
	PublishDetails      rate   `json:"publish_details"`
	DeliverGet          uint64 `json:"deliver_get"`
	DeliverGetDetails   rate   `json:"deliver_get_details"`
	Ack                 uint64 `json:"ack"`
	AckDetails          rate   `json:"ack_details"`
	DeadLettered        uint64 `json:"dead_lettered,omitempty"`
	DeadLetteredDetails *rate  `json:"dead_lettered_details,omitempty"`
}

func (ms *messageStats) add(o messageStats) {
	ms.Publish += o.Publish
	ms.PublishDetails.Rate += o.PublishDetails.Rate
	ms.DeliverGet += o.DeliverGet
	ms.DeliverGetDetails.Rate += o.DeliverGetDetails.Rate
	ms.Ack += o.Ack
	ms.AckDetails.Rate += o.AckDetails.Rate
}

func statsOf(st queue.Stats, r rates) messageStats {
	ms := messageStats{
		Publish: st.Published, PublishDetails: rate{r.Publish},
		DeliverGet: st.Delivered, DeliverGetDetails: rate{r.Deliver},
		Ack: st.Acked, AckDetails: rate{r.Ack},
	}
	if st.DeadLettered > 0 {
		ms.DeadLettered, ms.DeadLetteredDetails = st.DeadLettered, &rate{r.DeadLettered}
	}
	return ms
}

// queueJSON is a queue as GET /api/queues shows it.
type queueJSON struct {
	Name                          string         `json:"name"`
	VHost                         string         `json:"vhost"`
	Durable                       bool           `json:"durable"`
	AutoDelete                    bool           `json:"auto_delete"`
	Exclusive                     bool           `json:"exclusive"`
	Arguments                     map[string]any `json:"arguments"`
	Node                          string         `json:"node"`
	State                         string         `json:"state"`
	Type                          string         `json:"type"`
	Policy                        *string        `json:"policy"`
	ExclusiveConsumerTag          *string        `json:"exclusive_consumer_tag"`
	Consumers                     int            `json:"consumers"`
	Messages                      int            `json:"messages"`
	MessagesDetails               rate           `json:"messages_details"`
	MessagesReady                 int            `json:"messages_ready"`
	MessagesReadyDetails          rate           `json:"messages_ready_details"`
	MessagesUnacknowledged        int            `json:"messages_unacknowledged"`
	MessagesUnacknowledgedDetails rate           `json:"messages_unacknowledged_details"`
	MessageBytesReady             int64          `json:"message_bytes_ready"`
	MessageStats                  messageStats   `json:"message_stats"`
	// DeadLetterQueue is Warren's: the queue is some queue's dead-letter target.
	DeadLetterQueue bool `json:"dead_letter_queue"`
	// A quorum queue's raft group, as RabbitMQ 3.10 shows it: the node of
	// its leader, its members and those online.
	Leader  string   `json:"leader,omitempty"`
	Members []string `json:"members,omitempty"`
	Online  []string `json:"online,omitempty"`
}

func (a *API) queueJSON(v *vhost.VHost, q queue.Interface, dlq bool) queueJSON {
	st := q.Stats()
	r := a.stats.rates(v.Name, q)
	j := queueJSON{
		Name: q.Declared().Name, VHost: v.Name, Durable: q.Declared().Durable, AutoDelete: q.Declared().AutoDelete, Exclusive: q.Declared().Exclusive,
		Arguments: broker.JSONTable(q.Declared().Args), Node: a.node, State: "running", Type: q.Declared().Type.String(),
		Consumers: st.Consumers, Messages: st.Ready + st.Unacked, MessagesDetails: rate{r.Messages},
		MessagesReady: st.Ready, MessagesReadyDetails: rate{r.Ready},
		MessagesUnacknowledged: st.Unacked, MessagesUnacknowledgedDetails: rate{r.Unacked},
		MessageBytesReady: st.ReadyBytes, MessageStats: statsOf(st, r), DeadLetterQueue: dlq,
	}
	if p := v.PolicyFor(q.Declared().Name, true); p != "" {
		j.Policy = &p
	}
	if _, ok := q.(*queue.Quorum); ok {
		// One node: this one is every group's only member and leader.
		j.Leader, j.Members, j.Online = a.node, []string{a.node}, []string{a.node}
	}
	return j
}

func (a *API) overview(q *request) {
	var totals struct {
		Messages        int `json:"messages"`
		MessagesReady   int `json:"messages_ready"`
		MessagesUnacked int `json:"messages_unacknowledged"`
	}
	var ms messageStats
	nq, nx, ncons := 0, 0, 0
	for _, v := range a.broker.VHosts() {
		if !a.canSee(q.u, v.Name) {
			continue
		}
		nx += len(v.Exchanges())
		for _, qu := range v.Queues() {
			st := qu.Stats()
			nq++
			ncons += st.Consumers
			totals.Messages += st.Ready + st.Unacked
			totals.MessagesReady += st.Ready
			totals.MessagesUnacked += st.Unacked
			ms.add(statsOf(st, a.stats.rates(v.Name, qu)))
		}
	}
	id := a.srv.Identity()
	ov := map[string]any{
		// The configured identity, RabbitMQ 3.10.8 by default (see
		// amqp.DefaultIdentity); warren_version says what really runs.
		"management_version": id.Version,
		"rabbitmq_version":   id.Version,
		"product_name":       id.Product,
		"product_version":    id.Version,
		"warren_version":     broker.Version,
		"erlang_version":     "n/a",
		"cluster_name":       a.broker.ClusterName(),
		"node":               a.node,
		"rates_mode":         "basic",
		"message_stats":      ms,
		"queue_totals":       totals,
		"object_totals": map[string]int{
			"connections": a.srv.ConnectionCount(), "channels": len(a.srv.Channels()),
			"exchanges": nx, "queues": nq, "consumers": ncons,
		},
		"listeners": a.listenersJSON(),
		"contexts":  []any{},
	}
	if q.u.has("administrator", "monitoring") {
		ov["queue_totals"] = asObject(totals)
		a.withOverviewHistory(ov, q.r.URL.Query()) // history_api.go
	}
	q.reply(ov)
}

func (a *API) nodes(q *request) {
	node := map[string]any{
		"name": a.node, "type": "disc", "running": true, "mem_used": rss(),
		"uptime": time.Since(a.started).Milliseconds(), "os_pid": strconv.Itoa(os.Getpid()), "enabled_plugins": plugins.Names(),
	}
	node["mem_alarm"], node["disk_free_alarm"] = a.broker.Alarms()
	a.nodeFacts(node) // history_api.go
	if len(q.segs) == 2 {
		if q.segs[1] != a.node {
			notFound(q.w)
			return
		}
		a.withNodeHistory(node, q.r.URL.Query())
		q.reply(node)
		return
	}
	replyList(q, []any{node}, false)
}

func (a *API) connectionJSON(c amqp.ConnectionInfo) map[string]any {
	recv, send := a.connRates(c.ID)
	props := broker.JSONTable(c.ClientProperties)
	name, _ := props["connection_name"].(string)
	return map[string]any{
		"name": c.Name, "node": a.node, "user": c.User, "vhost": c.VHost,
		"host": c.Host, "port": c.Port, "peer_host": c.PeerHost, "peer_port": c.PeerPort,
		"channels": c.Channels, "ssl": c.TLS, "protocol": "AMQP 0-9-1", "state": "running",
		"frame_max": c.FrameMax, "channel_max": c.ChannelMax, "timeout": c.Heartbeat, "type": "network",
		"client_properties": props, "user_provided_name": name, "auth_mechanism": c.Mechanism,
		"connected_at": c.ConnectedAt.UnixMilli(), "recv_oct": c.RecvBytes, "recv_oct_details": rate{recv}, "recv_cnt": c.RecvCount,
		"send_oct": c.SendBytes, "send_oct_details": rate{send}, "send_cnt": c.SendCount, "send_pend": c.PendingBytes,
	}
}

// visibleConn: monitoring and administrators see every connection, others their own.
func (q *request) sees(user, vh string) bool {
	return q.u.has("administrator", "monitoring") || q.u.name == user
}

func (a *API) connections(q *request) {
	out := []map[string]any{}
	for _, c := range a.srv.Connections() {
		if q.sees(c.User, c.VHost) {
			out = append(out, a.connectionJSON(c))
		}
	}
	replyList(q, out, true)
}

func (a *API) connection(q *request, name string) {
	for _, c := range a.srv.Connections() {
		if c.Name == name && q.sees(c.User, c.VHost) {
			obj := a.connectionJSON(c)
			a.withConnHistory(obj, c.ID, q.r.URL.Query()) // history_api.go
			q.reply(obj)
			return
		}
	}
	notFound(q.w)
}

func (a *API) closeConnection(q *request, name string) {
	reason := q.r.Header.Get("X-Reason")
	if !a.srv.CloseConnection(name, reason) {
		notFound(q.w)
		return
	}
	q.w.WriteHeader(http.StatusNoContent)
}

// closeUserConnections closes every connection of user, as DELETE
// /api/connections/username/{user}.
func (a *API) closeUserConnections(q *request, user string) {
	reason := q.r.Header.Get("X-Reason")
	for _, c := range a.srv.Connections() {
		if c.User == user {
			a.srv.CloseConnection(c.Name, reason)
		}
	}
	q.w.WriteHeader(http.StatusNoContent)
}

func (a *API) channelJSON(ch amqp.ChannelInfo) map[string]any {
	c := ch.Connection
	return map[string]any{
		"name": ch.Name, "number": ch.Number, "node": a.node, "user": c.User, "vhost": c.VHost,
		"connection_details":      map[string]any{"name": c.Name, "peer_host": c.PeerHost, "peer_port": c.PeerPort},
		"consumer_count":          ch.Consumers,
		"messages_unacknowledged": ch.Unacked,
		"global_prefetch_count":   ch.GlobalPrefetch,
		"prefetch_count":          ch.Prefetch,
		"messages_unconfirmed":    ch.Unconfirmed,
		"messages_uncommitted":    ch.Uncommitted,
		"acks_uncommitted":        ch.AcksUncommitted,
		"message_stats":           a.channelStats(chanKey{c.ID, ch.Number}, ch.Totals, nil),
		"state":                   "running",
	}
}

func (a *API) channels(q *request) {
	out := []map[string]any{}
	for _, ch := range a.srv.Channels() {
		if q.sees(ch.Connection.User, ch.Connection.VHost) {
			out = append(out, a.channelJSON(ch))
		}
	}
	replyList(q, out, true)
}

// channel is /api/channels/{name}: one channel, with message_stats
// samples over the msg_rates window if asked.
func (a *API) channel(q *request, name string) {
	for _, ch := range a.srv.Channels() {
		if ch.Name == name && q.sees(ch.Connection.User, ch.Connection.VHost) {
			j := a.channelJSON(ch)
			j["message_stats"] = a.channelStats(chanKey{ch.Connection.ID, ch.Number}, ch.Totals, q.r.URL.Query())
			q.reply(j)
			return
		}
	}
	notFound(q.w)
}

func (a *API) consumers(q *request) {
	vs, ok := a.visibleVHosts(q, 1)
	if !ok {
		return
	}
	want := map[string]bool{}
	for _, v := range vs {
		want[v.Name] = true
	}
	out := []map[string]any{}
	for _, c := range a.srv.Consumers() {
		if !want[c.VHost] {
			continue
		}
		cn := c.Channel.Connection
		out = append(out, map[string]any{
			"consumer_tag": c.Tag,
			"queue":        map[string]any{"name": c.Queue, "vhost": c.VHost},
			"channel_details": map[string]any{
				"name": c.Channel.Name, "number": c.Channel.Number, "connection_name": cn.Name,
				"peer_host": cn.PeerHost, "peer_port": cn.PeerPort, "user": cn.User, "node": a.node,
			},
			"ack_required": c.AckRequired, "prefetch_count": c.Prefetch, "exclusive": false,
			"active": true, "activity_status": "up", "arguments": map[string]any{},
		})
	}
	replyList(q, out, false)
}

// ---- queues ----

func (a *API) routeQueues(q *request) {
	s, m := q.segs, q.r.Method
	switch len(s) {
	case 1, 2:
		get(q, a.listQueues)
		return
	case 3:
		v := a.vhost(q, s[1])
		if v == nil {
			return
		}
		switch m {
		case http.MethodGet:
			qu := findQueue(v, s[2])
			if qu == nil {
				notFound(q.w)
				return
			}
			obj := asObject(a.queueJSON(v, qu, deadLetterQueues(v)[qu.Declared().Name]))
			a.withQueueHistory(obj, qkey{v.Name, qu.Declared().Name}, qu, q.r.URL.Query()) // history_api.go
			q.reply(obj)
		case http.MethodPut:
			a.declareQueue(q, v, s[2])
		case http.MethodDelete:
			a.deleteQueue(q, v, s[2])
		default:
			methodNotAllowed(q.w)
		}
		return
	}
	v := a.vhost(q, s[1])
	if v == nil {
		return
	}
	qu := findQueue(v, s[2])
	if qu == nil {
		notFound(q.w)
		return
	}
	switch {
	case len(s) == 4 && s[3] == "contents" && m == http.MethodDelete:
		if !a.permitted(q, v.Name, broker.Read, s[2]) {
			return
		}
		qu.Purge()
		q.w.WriteHeader(http.StatusNoContent)
	case len(s) == 4 && s[3] == "get" && m == http.MethodPost:
		if a.permitted(q, v.Name, broker.Read, s[2]) {
			a.getMessages(q, v, qu)
		}
	case len(s) == 4 && s[3] == "bindings":
		get(q, func(q *request) { replyList(q, queueBindings(v, qu.Declared().Name), false) })
	case len(s) == 4 && s[3] == "dead-letters":
		get(q, func(q *request) { a.inspectDeadLetters(q, v, qu) })
	case len(s) == 5 && s[3] == "dead-letters" && s[4] == "replay" && m == http.MethodPost:
		a.replayDeadLetters(q, v, qu)
	case len(s) == 4 && s[3] == "actions" && m == http.MethodPost:
		q.w.WriteHeader(http.StatusNoContent) // sync/cancel_sync: nothing to do for classic queues
	default:
		notFound(q.w)
	}
}

// findQueue returns a queue whatever its owner (the API sees exclusive
// queues too, as RabbitMQ's does).
func findQueue(v *vhost.VHost, name string) queue.Interface {
	q, err := v.Queue(name, 0)
	if err == nil {
		return q
	}
	var ve *vhost.Error
	if errors.As(err, &ve) && ve.Kind == vhost.NotFound {
		return nil
	}
	for _, q := range v.Queues() {
		if q.Declared().Name == name {
			return q
		}
	}
	return nil
}

func (a *API) listQueues(q *request) {
	vs, ok := a.visibleVHosts(q, 1)
	if !ok {
		return
	}
	var out []queueJSON
	for _, v := range vs {
		dlqs := deadLetterQueues(v)
		qs := v.Queues()
		sort.Slice(qs, func(i, j int) bool { return qs[i].Declared().Name < qs[j].Declared().Name })
		for _, qu := range qs {
			out = append(out, a.queueJSON(v, qu, dlqs[qu.Declared().Name]))
		}
	}
	replyList(q, out, true)
}

// declareBody is the body of PUT /api/queues and /api/exchanges.
type declareBody struct {
	Type       string         `json:"type"`
	Durable    *bool          `json:"durable"`
	AutoDelete bool           `json:"auto_delete"`
	Internal   bool           `json:"internal"`
	Arguments  map[string]any `json:"arguments"`
}

// UnmarshalJSON accepts booleans given as strings ("true"), as
// rabbitmqadmin sends them.
func (d *declareBody) UnmarshalJSON(b []byte) error {
	var raw map[string]any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	boolOf := func(v any) (bool, bool) {
		switch v := v.(type) {
		case bool:
			return v, true
		case string:
			return v == "true", true
		}
		return false, false
	}
	if t, ok := raw["type"].(string); ok {
		d.Type = t
	}
	if b, ok := boolOf(raw["durable"]); ok {
		d.Durable = &b
	}
	d.AutoDelete, _ = boolOf(raw["auto_delete"])
	d.Internal, _ = boolOf(raw["internal"])
	if args, ok := raw["arguments"].(map[string]any); ok {
		d.Arguments = args
	}
	return nil
}

func (d *declareBody) durable() bool { return d.Durable == nil || *d.Durable }

func (a *API) declareQueue(q *request, v *vhost.VHost, name string) {
	var body declareBody
	if !readBody(q, &body) {
		return
	}
	if name == "" {
		badRequest(q.w, "queue name must not be empty")
		return
	}
	if findQueue(v, name) == nil && vhost.Reserved(name) {
		writeError(q.w, http.StatusForbidden, "access_refused", "queue name '"+name+"' contains reserved prefix 'amq.*'")
		return
	}
	existed := findQueue(v, name) != nil
	if !a.permitted(q, v.Name, broker.Configure, name) {
		return
	}
	a.applyIn(q, v, vhost.DeclareQueue{Name: name, Durable: body.durable(), AutoDelete: body.AutoDelete, Args: broker.TableArgs(body.Arguments)}, createdOr(existed))
}

func (a *API) deleteQueue(q *request, v *vhost.VHost, name string) {
	qu := findQueue(v, name)
	if qu == nil {
		notFound(q.w)
		return
	}
	if !a.permitted(q, v.Name, broker.Configure, name) {
		return
	}
	qs := q.r.URL.Query()
	a.applyIn(q, v, vhost.DeleteQueue{Name: name, IfUnused: qs.Get("if-unused") == "true", IfEmpty: qs.Get("if-empty") == "true", Owner: qu.Declared().Owner}, http.StatusNoContent)
}

// ---- exchanges ----

type exchangeJSON struct {
	Name       string         `json:"name"`
	VHost      string         `json:"vhost"`
	Type       string         `json:"type"`
	Durable    bool           `json:"durable"`
	AutoDelete bool           `json:"auto_delete"`
	Internal   bool           `json:"internal"`
	Arguments  map[string]any `json:"arguments"`
	UserWho    string         `json:"user_who_performed_action"`
	// MessagesDelayed is what an x-delayed-message exchange holds, as the
	// plugin's exchange info adds it.
	MessagesDelayed *int `json:"messages_delayed,omitempty"`
}

func exchangeOf(v *vhost.VHost, e *exchange.Exchange) exchangeJSON {
	j := exchangeJSON{Name: e.Name, VHost: v.Name, Type: e.Kind.String(), Durable: e.Durable,
		AutoDelete: e.AutoDelete, Internal: e.Internal, Arguments: broker.JSONTable(e.Args), UserWho: "rmq-internal"}
	if e.Kind == exchange.Delayed {
		n := v.MessagesDelayed(e)
		j.MessagesDelayed = &n
	}
	return j
}

func (a *API) routeExchanges(q *request) {
	s, m := q.segs, q.r.Method
	switch len(s) {
	case 1, 2:
		get(q, func(q *request) {
			vs, ok := a.visibleVHosts(q, 1)
			if !ok {
				return
			}
			var out []exchangeJSON
			for _, v := range vs {
				es := v.Exchanges()
				sort.Slice(es, func(i, j int) bool { return es[i].Name < es[j].Name })
				for _, e := range es {
					out = append(out, exchangeOf(v, e))
				}
			}
			replyList(q, out, true)
		})
		return
	}
	v := a.vhost(q, s[1])
	if v == nil {
		return
	}
	name := exchangeName(s[2])
	if len(s) == 3 {
		switch m {
		case http.MethodGet:
			e, err := v.Exchange(name)
			if err != nil {
				notFound(q.w)
				return
			}
			obj := asObject(exchangeOf(v, e))
			a.withExchangeHistory(obj, qkey{v.Name, e.Name}, e, q.r.URL.Query()) // history_api.go
			q.reply(obj)
		case http.MethodPut:
			a.declareExchange(q, v, name)
		case http.MethodDelete:
			if _, err := v.Exchange(name); err != nil {
				notFound(q.w)
				return
			}
			if name == "" || vhost.Reserved(name) {
				writeError(q.w, http.StatusForbidden, "access_refused", "deletion of system exchange '"+s[2]+"' in vhost '"+v.Name+"' not allowed")
				return
			}
			if !a.permitted(q, v.Name, broker.Configure, name) {
				return
			}
			a.applyIn(q, v, vhost.DeleteExchange{Name: name, IfUnused: q.r.URL.Query().Get("if-unused") == "true"}, http.StatusNoContent)
		default:
			methodNotAllowed(q.w)
		}
		return
	}
	e, err := v.Exchange(name)
	if err != nil {
		notFound(q.w)
		return
	}
	switch {
	case len(s) == 4 && s[3] == "publish" && m == http.MethodPost:
		if a.permitted(q, v.Name, broker.Write, name) {
			a.publish(q, v, name)
		}
	case len(s) == 5 && s[3] == "bindings" && s[4] == "source":
		get(q, func(q *request) {
			out := []bindingJSON{}
			if e.Name == "" {
				out = defaultBindings(v)
			} else {
				out = append(out, bindingsOf(v, e)...)
			}
			replyList(q, out, false)
		})
	case len(s) == 5 && s[3] == "bindings" && s[4] == "destination":
		get(q, func(q *request) {
			out := []bindingJSON{}
			for _, b := range allBindings(v, false) {
				if b.DestinationType == "exchange" && b.Destination == e.Name {
					out = append(out, b)
				}
			}
			replyList(q, out, false)
		})
	default:
		notFound(q.w)
	}
}

func (a *API) declareExchange(q *request, v *vhost.VHost, name string) {
	var body declareBody
	if !readBody(q, &body) {
		return
	}
	if name == "" {
		writeError(q.w, http.StatusForbidden, "access_refused", "operation not permitted on the default exchange")
		return
	}
	_, err := v.Exchange(name)
	existed := err == nil
	if !existed && vhost.Reserved(name) {
		writeError(q.w, http.StatusForbidden, "access_refused", "exchange name '"+name+"' contains reserved prefix 'amq.*'")
		return
	}
	if body.Type == "" {
		badRequest(q.w, "type is required")
		return
	}
	if !a.permitted(q, v.Name, broker.Configure, name) {
		return
	}
	a.applyIn(q, v, vhost.DeclareExchange{Name: name, Kind: body.Type, Durable: body.durable(), AutoDelete: body.AutoDelete,
		Internal: body.Internal, Args: broker.TableArgs(body.Arguments)}, createdOr(existed))
}

// ---- bindings ----

type bindingJSON struct {
	Source          string         `json:"source"`
	VHost           string         `json:"vhost"`
	Destination     string         `json:"destination"`
	DestinationType string         `json:"destination_type"`
	RoutingKey      string         `json:"routing_key"`
	Arguments       map[string]any `json:"arguments"`
	PropertiesKey   string         `json:"properties_key"`
	args            map[string]any // as stored, for unbind
}

func bindingOf(v *vhost.VHost, b exchange.Binding) bindingJSON {
	dt := "queue"
	if b.Destination.Exchange {
		dt = "exchange"
	}
	return bindingJSON{Source: b.Source, VHost: v.Name, Destination: b.Destination.Name, DestinationType: dt,
		RoutingKey: b.Key, Arguments: broker.JSONTable(b.Args), PropertiesKey: broker.PropertiesKey(b.Key, b.Args), args: b.Args}
}

func bindingsOf(v *vhost.VHost, e *exchange.Exchange) []bindingJSON {
	bs := e.Bindings()
	out := make([]bindingJSON, 0, len(bs))
	for _, b := range bs {
		out = append(out, bindingOf(v, b))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Destination != out[j].Destination {
			return out[i].Destination < out[j].Destination
		}
		return out[i].PropertiesKey < out[j].PropertiesKey
	})
	return out
}

// defaultBindings are the implicit default-exchange bindings RabbitMQ lists.
func defaultBindings(v *vhost.VHost) []bindingJSON {
	qs := v.Queues()
	sort.Slice(qs, func(i, j int) bool { return qs[i].Declared().Name < qs[j].Declared().Name })
	out := make([]bindingJSON, 0, len(qs))
	for _, q := range qs {
		out = append(out, bindingJSON{VHost: v.Name, Destination: q.Declared().Name, DestinationType: "queue",
			RoutingKey: q.Declared().Name, Arguments: map[string]any{}, PropertiesKey: broker.PropertiesKey(q.Declared().Name, nil)})
	}
	return out
}

// allBindings lists v's bindings by source, with the default exchange's if withDefault.
func allBindings(v *vhost.VHost, withDefault bool) []bindingJSON {
	var out []bindingJSON
	if withDefault {
		out = defaultBindings(v)
	}
	es := v.Exchanges()
	sort.Slice(es, func(i, j int) bool { return es[i].Name < es[j].Name })
	for _, e := range es {
		if e.Name != "" {
			out = append(out, bindingsOf(v, e)...)
		}
	}
	return out
}

func queueBindings(v *vhost.VHost, name string) []bindingJSON {
	out := []bindingJSON{{VHost: v.Name, Destination: name, DestinationType: "queue", RoutingKey: name,
		Arguments: map[string]any{}, PropertiesKey: broker.PropertiesKey(name, nil)}}
	for _, b := range allBindings(v, false) {
		if b.DestinationType == "queue" && b.Destination == name {
			out = append(out, b)
		}
	}
	return out
}

// routeBindings: /api/bindings[/vhost], /api/bindings/vhost/e/src/{q,e}/dest[/props].
func (a *API) routeBindings(q *request) {
	s, m := q.segs, q.r.Method
	if len(s) <= 2 {
		get(q, func(q *request) {
			vs, ok := a.visibleVHosts(q, 1)
			if !ok {
				return
			}
			out := []bindingJSON{}
			for _, v := range vs {
				out = append(out, allBindings(v, true)...)
			}
			replyList(q, out, false)
		})
		return
	}
	if (len(s) != 6 && len(s) != 7) || s[2] != "e" || (s[4] != "q" && s[4] != "e") {
		notFound(q.w)
		return
	}
	v := a.vhost(q, s[1])
	if v == nil {
		return
	}
	src, dest, toEx := exchangeName(s[3]), s[5], s[4] == "e"
	if toEx {
		dest = exchangeName(dest)
	}
	matching := func() []bindingJSON {
		var out []bindingJSON
		e, err := v.Exchange(src)
		if err != nil {
			return nil
		}
		var bs []bindingJSON
		if src == "" {
			bs = defaultBindings(v)
		} else {
			bs = bindingsOf(v, e)
		}
		for _, b := range bs {
			if b.Destination == dest && (b.DestinationType == "exchange") == toEx {
				out = append(out, b)
			}
		}
		return out
	}
	if len(s) == 6 {
		switch m {
		case http.MethodGet:
			if _, err := v.Exchange(src); err != nil {
				notFound(q.w)
				return
			}
			replyList(q, nonNil(matching()), false)
		case http.MethodPost:
			var body struct {
				RoutingKey string         `json:"routing_key"`
				Arguments  map[string]any `json:"arguments"`
			}
			if !readBody(q, &body) {
				return
			}
			args := broker.TableArgs(body.Arguments)
			if !a.bindPermitted(q, v, src, dest, toEx, body.RoutingKey) {
				return
			}
			// The header goes before the status; on an error it is harmless.
			// RabbitMQ's Location is relative: the destination, then the
			// properties key escaped once more.
			q.w.Header().Set("Location", url.PathEscape(dest)+"/"+url.PathEscape(broker.PropertiesKey(body.RoutingKey, args)))
			a.applyIn(q, v, vhost.Bind{Source: src, Destination: dest, ToExchange: toEx, Key: body.RoutingKey, Args: args, Owner: ownerOf(v, dest, toEx)}, http.StatusCreated)
		default:
			methodNotAllowed(q.w)
		}
		return
	}
	for _, b := range matching() {
		if pk, _ := url.PathUnescape(b.PropertiesKey); b.PropertiesKey != s[6] && pk != s[6] {
			continue
		}
		switch m {
		case http.MethodGet:
			q.reply(b)
		case http.MethodDelete:
			if !a.bindPermitted(q, v, src, dest, toEx, b.RoutingKey) {
				return
			}
			a.applyIn(q, v, vhost.Unbind{Source: src, Destination: dest, ToExchange: toEx, Key: b.RoutingKey,
				Args: b.args, Owner: ownerOf(v, dest, toEx)}, http.StatusNoContent)
		default:
			methodNotAllowed(q.w)
		}
		return
	}
	notFound(q.w)
}

// ownerOf is the owner to act as on a queue binding: the API may bind
// exclusive queues, as RabbitMQ's may.
func ownerOf(v *vhost.VHost, dest string, toEx bool) uint64 {
	if toEx {
		return 0
	}
	if q := findQueue(v, dest); q != nil {
		return q.Declared().Owner
	}
	return 0
}

// bindPermitted checks what RabbitMQ's queue.bind and exchange.bind check
// for the caller: write on the destination, read on the source, and the
// topic read permission on a topic source.
func (a *API) bindPermitted(q *request, v *vhost.VHost, src, dest string, toEx bool, key string) bool {
	if !a.permitted(q, v.Name, broker.Write, dest) || !a.permitted(q, v.Name, broker.Read, src) {
		return false
	}
	acct := a.broker.Account(q.u.name)
	if acct == nil || !acct.HasTopicPermissions(v.Name) {
		return true
	}
	if e, err := v.Exchange(src); err == nil && e.Kind == exchange.Topic && !acct.TopicAllowed(v.Name, src, broker.Read, key) {
		notAuthorised(q.w, "access to topic '"+key+"' in exchange '"+src+"' in vhost '"+v.Name+"' refused for user '"+q.u.name+"'")
		return false
	}
	return true
}
