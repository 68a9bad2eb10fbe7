package management

import (
	"encoding/json"
	"net/url"
	"runtime"
	"time"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/exchange"
)

// The API's side of history.go: RabbitMQ's sample windows (lengths_age,
// lengths_incr, msg_rates_age, msg_rates_incr, data_rates_age,
// data_rates_incr) turn an object's X_details from {"rate"} into
// {"rate", "samples", "avg_rate", "avg"}, as RabbitMQ's management API
// does, for the overview, /api/nodes/{name}, and single queues,
// connections and channels.

// asObject turns a value that marshals to a JSON object into a map, so
// that samples can be added to it. Detail pages only: one object a call.
func asObject(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		return map[string]any{}
	}
	m := map[string]any{}
	_ = json.Unmarshal(b, &m)
	return m
}

// putDetails sets, for each name of fields that s holds, obj[name] to the
// latest reading and obj[name+"_details"] to its samples over w.
func putDetails(obj map[string]any, s *series, all []string, names []string, w window, now int64) {
	for _, n := range names {
		f := fieldIndex(all, n)
		if f < 0 {
			continue
		}
		obj[n] = s.last[f]
		obj[n+"_details"] = s.details(f, w, now, s.rate(f))
	}
}

// sub returns obj[key] as an object, made if missing.
func sub(obj map[string]any, key string) map[string]any {
	if m, ok := obj[key].(map[string]any); ok {
		return m
	}
	m := map[string]any{}
	obj[key] = m
	return m
}

// overviewMessageNames are the overview's and channels' message_stats.
var overviewMessageNames = channelFields

// withOverviewHistory replaces the overview's message_stats, queue_totals
// and churn_rates by the node's series, with samples when asked. Only for
// callers that see every vhost: the series are the node's.
func (a *API) withOverviewHistory(ov map[string]any, qv url.Values) {
	h := a.stats.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.global
	if g.lastAt == 0 {
		return // not sampled yet: keep the live totals
	}
	now := time.Now().UnixMilli()
	rates, rok := windowOf(qv, "msg_rates")
	lengths, lok := windowOf(qv, "lengths")
	put := func(obj map[string]any, names []string, w window, ok bool) {
		if ok {
			putDetails(obj, g, globalFields, names, w, now)
			return
		}
		for _, n := range names {
			f := fieldIndex(globalFields, n)
			obj[n] = g.last[f]
			obj[n+"_details"] = rate{g.rate(f)}
		}
	}
	ms := map[string]any{}
	put(ms, overviewMessageNames, rates, rok)
	ov["message_stats"] = ms
	qt := map[string]any{}
	put(qt, []string{"messages", "messages_ready", "messages_unacknowledged"}, lengths, lok)
	// queue_totals are live counts, not the last sample, as elsewhere.
	if old, ok := ov["queue_totals"].(map[string]any); ok {
		for k, v := range old {
			qt[k] = v
		}
	}
	ov["queue_totals"] = qt
	cr := map[string]any{}
	put(cr, []string{"connection_created", "connection_closed", "channel_created", "channel_closed",
		"queue_declared", "queue_created", "queue_deleted"}, rates, rok)
	ov["churn_rates"] = cr
	ov["sample_retention_policies"] = retentionPolicies(h.interval)
	ov["statistics_interval"] = h.interval.Milliseconds()
}

// withNodeHistory adds the node's resource samples (mem_used, disk_free,
// fd_used, sockets_used) over the lengths window, if asked.
func (a *API) withNodeHistory(node map[string]any, qv url.Values) {
	w, ok := windowOf(qv, "lengths")
	if !ok {
		return
	}
	h := a.stats.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.global.lastAt == 0 {
		return
	}
	now := time.Now().UnixMilli()
	for _, n := range []string{"mem_used", "disk_free", "fd_used", "sockets_used"} {
		f := fieldIndex(globalFields, n)
		node[n+"_details"] = h.global.details(f, w, now, h.global.rate(f))
	}
}

// withQueueHistory adds a queue's samples: lengths to messages,
// messages_ready and messages_unacknowledged, msg_rates to message_stats.
func (a *API) withQueueHistory(obj map[string]any, k qkey, qu any, qv url.Values) {
	lengths, lok := windowOf(qv, "lengths")
	rates, rok := windowOf(qv, "msg_rates")
	if !lok && !rok {
		return
	}
	h := a.stats.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	e, found := h.queues[k]
	if !found || e.q != qu {
		return
	}
	now := time.Now().UnixMilli()
	if lok {
		putDetails(obj, e.s, queueFields, []string{"messages", "messages_ready", "messages_unacknowledged"}, lengths, now)
	}
	if rok {
		names := []string{"publish", "deliver_get", "ack"}
		if e.s.last[fieldIndex(queueFields, "dead_lettered")] > 0 {
			names = append(names, "dead_lettered")
		}
		putDetails(sub(obj, "message_stats"), e.s, queueFields, names, rates, now)
	}
}

// connRates is a connection's recv_oct and send_oct rates (zero before
// two samples).
func (a *API) connRates(id uint64) (recv, send float64) {
	h := a.stats.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.conns[id]; s != nil {
		return s.rate(0), s.rate(1)
	}
	return 0, 0
}

// withConnHistory adds a connection's recv_oct and send_oct samples over
// the data_rates window.
func (a *API) withConnHistory(obj map[string]any, id uint64, qv url.Values) {
	w, ok := windowOf(qv, "data_rates")
	if !ok {
		return
	}
	h := a.stats.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.conns[id]; s != nil {
		putDetails(obj, s, connFields, connFields, w, time.Now().UnixMilli())
	}
}

// channelStats is a channel's message_stats: its live counts with the
// sampled rates, and samples over the msg_rates window of qv (nil: none).
func (a *API) channelStats(k chanKey, live amqp.MessageTotals, qv url.Values) map[string]any {
	ms := map[string]any{}
	counts := channelTotals(make([]int64, 0, len(channelFields)), live)
	h := a.stats.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.channels[k]
	w, ok := windowOf(qv, "msg_rates")
	if s != nil && ok {
		putDetails(ms, s, channelFields, channelFields, w, time.Now().UnixMilli())
	}
	for f, n := range channelFields {
		ms[n] = counts[f]
		if s == nil {
			ms[n+"_details"] = rate{}
		} else if !ok {
			ms[n+"_details"] = rate{s.rate(f)}
		}
	}
	return ms
}

// nodeFacts adds what RabbitMQ's overview shows of a node: memory and its
// limit, disk free and its limit, file and socket descriptors, processors.
func (a *API) nodeFacts(node map[string]any) {
	res := a.broker.Resources()
	fdTotal := maxFDs()
	node["mem_used"] = res.ResidentMemory
	node["mem_limit"] = res.MemoryHighWatermark
	node["mem_calculation_strategy"] = "rss"
	node["disk_free"] = res.DiskFree
	node["disk_free_limit"] = res.DiskFreeLimit
	node["fd_used"] = openFDs()
	node["fd_total"] = fdTotal
	node["sockets_used"] = a.srv.ConnectionCount()
	// RabbitMQ keeps about 90 % of descriptors for sockets.
	node["sockets_total"] = fdTotal * 9 / 10
	node["processors"] = runtime.NumCPU()
	node["rates_mode"] = "basic"
	node["db_dir"] = a.broker.DataDir()
}

// withExchangeHistory adds an exchange's message_stats (publish_in,
// publish_out) with rates, and samples over the msg_rates window if asked.
func (a *API) withExchangeHistory(obj map[string]any, k qkey, e *exchange.Exchange, qv url.Values) {
	in, out := e.PublishCounts()
	ms := sub(obj, "message_stats")
	ms["publish_in"], ms["publish_out"] = in, out
	ms["publish_in_details"], ms["publish_out_details"] = rate{}, rate{}
	h := a.stats.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	x, found := h.exchanges[k]
	if !found || x.q != e {
		return
	}
	if w, ok := windowOf(qv, "msg_rates"); ok {
		putDetails(ms, x.s, exchangeFields, exchangeFields, w, time.Now().UnixMilli())
	} else {
		ms["publish_in_details"], ms["publish_out_details"] = rate{x.s.rate(0)}, rate{x.s.rate(1)}
	}
	ms["publish_in"], ms["publish_out"] = in, out
}
