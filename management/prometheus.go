package management

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/broker/sysinfo"
)

// Metrics returns the Prometheus handler, rabbitmq_prometheus 3.10's three
// endpoints in the text exposition format, with its family names, types,
// labels and HELP texts:
//
//   - /metrics: node-wide aggregates (no per-object labels), the
//     rabbitmq_global_* counters, alarms, build and identity info;
//   - /metrics/per-object: the same families, one series per queue, channel
//     and connection;
//   - /metrics/detailed: rabbitmq_detailed_* per object, only the groups
//     named by family= (RabbitMQ's table names, e.g. queue_coarse_metrics),
//     queue groups restricted to the vhost= given, plus rabbitmq_cluster_*.
//
// Serve it at /metrics and /metrics/. A queue that is some queue's
// dead-letter target carries dlq="true" in per-object output (Warren's own).
func (a *API) Metrics() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		switch strings.TrimSuffix(r.URL.Path, "/") {
		case "/metrics", "":
			a.writeMetrics(&b, scrapeAggregated, nil, nil)
		case "/metrics/per-object":
			a.writeMetrics(&b, scrapePerObject, nil, nil)
		case "/metrics/detailed":
			q := r.URL.Query()
			fams := map[string]bool{}
			for _, f := range q["family"] {
				fams[f] = true
			}
			var vhosts map[string]bool
			if vs, ok := q["vhost"]; ok {
				vhosts = map[string]bool{}
				for _, v := range vs {
					vhosts[v] = true
				}
			}
			a.writeMetrics(&b, scrapeDetailed, fams, vhosts)
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write(b.Bytes())
	})
}

type scrapeMode int

const (
	scrapeAggregated scrapeMode = iota
	scrapePerObject
	scrapeDetailed
)

// promFamily is one metric family of a group.
type promFamily struct{ name, typ, help string }

// promRow is one object's values for a group's families, in order. Labels
// are formatted only when the output is per object.
type promRow struct {
	vhost, name string // queue: vhost and name; channel, connection: name
	dlq         bool
	v           []float64
}

// Label layouts of promRow.
const (
	labelsNone = iota
	labelsQueue
	labelsChannel
)

// promGroup is one of rabbitmq_prometheus' tables: the unit that family=
// selects on /metrics/detailed.
type promGroup struct {
	table    string
	labels   int
	families []promFamily
	// queueScoped groups honour vhost= on /metrics/detailed.
	queueScoped bool
	rows        func(s *scrape) []promRow
}

// scrape is one reading of the node, taken once per request.
type scrape struct {
	queues   []promRow // ready, unacked, consumers, readyBytes, published
	channels []amqp.ChannelInfo
	conns    []amqp.ConnectionInfo
	churn    amqp.ChurnTotals
	res      broker.Resources
	started  time.Time
}

// The groups below are rabbitmq_prometheus 3.10's, less the families that
// mean nothing outside Erlang (reductions, process memory, erlang_*,
// schema_db_*) or that Warren does not keep (see README, Prometheus).
var promGroups = []promGroup{
	{table: "connection_churn_metrics", families: []promFamily{
		{"connections_opened_total", "counter", "Total number of connections opened"},
		{"connections_closed_total", "counter", "Total number of connections closed or terminated"},
		{"channels_opened_total", "counter", "Total number of channels opened"},
		{"channels_closed_total", "counter", "Total number of channels closed"},
		{"queues_declared_total", "counter", "Total number of queues declared"},
		{"queues_created_total", "counter", "Total number of queues created"},
		{"queues_deleted_total", "counter", "Total number of queues deleted"},
	}, rows: func(s *scrape) []promRow {
		c := s.churn
		return []promRow{{v: []float64{float64(c.ConnectionsOpened), float64(c.ConnectionsClosed), float64(c.ChannelsOpened),
			float64(c.ChannelsClosed), float64(c.QueuesDeclared), float64(c.QueuesCreated), float64(c.QueuesDeleted)}}}
	}},
	{table: "node_coarse_metrics", families: []promFamily{
		{"process_open_fds", "gauge", "Open file descriptors"},
		{"process_open_tcp_sockets", "gauge", "Open TCP sockets"},
		{"process_resident_memory_bytes", "gauge", "Memory used in bytes"},
		{"disk_space_available_bytes", "gauge", "Disk space available in bytes"},
	}, rows: func(s *scrape) []promRow {
		return []promRow{{v: []float64{float64(openFDs()), float64(len(s.conns)), float64(s.res.ResidentMemory), float64(s.res.DiskFree)}}}
	}},
	{table: "node_metrics", families: []promFamily{
		{"process_max_fds", "gauge", "Open file descriptors limit"},
		{"process_max_tcp_sockets", "gauge", "Open TCP sockets limit"},
		{"resident_memory_limit_bytes", "gauge", "Memory high watermark in bytes"},
		{"disk_space_available_limit_bytes", "gauge", "Free disk space low watermark in bytes"},
		// Erlang's name, kept for dashboards: the node's uptime.
		{"erlang_uptime_seconds", "gauge", "Node uptime"},
	}, rows: func(s *scrape) []promRow {
		fds := float64(maxFDs())
		return []promRow{{v: []float64{fds, fds, float64(s.res.MemoryHighWatermark), float64(s.res.DiskFreeLimit), time.Since(s.started).Seconds()}}}
	}},
	{table: "queue_coarse_metrics", labels: labelsQueue, queueScoped: true, families: []promFamily{
		{"queue_messages_ready", "gauge", "Messages ready to be delivered to consumers"},
		{"queue_messages_unacked", "gauge", "Messages delivered to consumers but not yet acknowledged"},
		{"queue_messages", "gauge", "Sum of ready and unacknowledged messages - total queue depth"},
	}, rows: func(s *scrape) []promRow {
		return queueRows(s, func(r *promRow) []float64 { return []float64{r.v[0], r.v[1], r.v[0] + r.v[1]} })
	}},
	{table: "queue_metrics", labels: labelsQueue, queueScoped: true, families: []promFamily{
		{"queue_consumers", "gauge", "Consumers on a queue"},
		{"queue_messages_ready_bytes", "gauge", "Size in bytes of ready messages"},
	}, rows: func(s *scrape) []promRow {
		return queueRows(s, func(r *promRow) []float64 { return []float64{r.v[2], r.v[3]} })
	}},
	{table: "channel_metrics", labels: labelsChannel, families: []promFamily{
		{"channel_consumers", "gauge", "Consumers on a channel"},
		{"channel_messages_unacked", "gauge", "Delivered but not yet acknowledged messages"},
		{"channel_messages_unconfirmed", "gauge", "Published but not yet confirmed messages"},
		{"channel_messages_uncommitted", "gauge", "Messages received in a transaction but not yet committed"},
		{"channel_acks_uncommitted", "gauge", "Message acknowledgements in a transaction not yet committed"},
		{"consumer_prefetch", "gauge", "Limit of unacknowledged messages for each consumer"},
		{"channel_prefetch", "gauge", "Total limit of unacknowledged messages for all consumers on a channel"},
	}, rows: func(s *scrape) []promRow {
		return channelRows(s, func(c *amqp.ChannelInfo) []float64 {
			return []float64{float64(c.Consumers), float64(c.Unacked), float64(c.Unconfirmed), float64(c.Uncommitted), float64(c.AcksUncommitted),
				float64(c.Prefetch), float64(c.GlobalPrefetch)}
		})
	}},
	{table: "channel_exchange_metrics", labels: labelsChannel, families: []promFamily{
		{"channel_messages_published_total", "counter", "Total number of messages published into an exchange on a channel"},
		{"channel_messages_confirmed_total", "counter", "Total number of messages published into an exchange and confirmed on the channel"},
		{"channel_messages_unroutable_returned_total", "counter", "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable"},
		{"channel_messages_unroutable_dropped_total", "counter", "Total number of messages published as non-mandatory into an exchange and dropped as unroutable"},
	}, rows: func(s *scrape) []promRow {
		return channelRows(s, func(c *amqp.ChannelInfo) []float64 {
			t := &c.Totals
			return []float64{float64(t.Received), float64(t.Confirmed), float64(t.UnroutableReturned), float64(t.UnroutableDropped)}
		})
	}},
	{table: "channel_queue_metrics", labels: labelsChannel, families: []promFamily{
		{"channel_get_ack_total", "counter", "Total number of messages fetched with basic.get in manual acknowledgement mode"},
		{"channel_get_total", "counter", "Total number of messages fetched with basic.get in automatic acknowledgement mode"},
		{"channel_messages_delivered_ack_total", "counter", "Total number of messages delivered to consumers in manual acknowledgement mode"},
		{"channel_messages_delivered_total", "counter", "Total number of messages delivered to consumers in automatic acknowledgement mode"},
		{"channel_messages_redelivered_total", "counter", "Total number of messages redelivered to consumers"},
		{"channel_messages_acked_total", "counter", "Total number of messages acknowledged by consumers"},
		{"channel_get_empty_total", "counter", "Total number of times basic.get operations fetched no message"},
	}, rows: func(s *scrape) []promRow {
		return channelRows(s, func(c *amqp.ChannelInfo) []float64 {
			t := &c.Totals
			return []float64{float64(t.DeliveredGetManualAck), float64(t.DeliveredGetAutoAck), float64(t.DeliveredConsumeManualAck),
				float64(t.DeliveredConsumeAutoAck), float64(t.Redelivered), float64(t.Acknowledged), float64(t.GetEmpty)}
		})
	}},
	{table: "connection_coarse_metrics", labels: labelsChannel, families: []promFamily{
		{"connection_incoming_bytes_total", "counter", "Total number of bytes received on a connection"},
		{"connection_outgoing_bytes_total", "counter", "Total number of bytes sent on a connection"},
	}, rows: func(s *scrape) []promRow {
		return connRows(s, func(c *amqp.ConnectionInfo) []float64 { return []float64{float64(c.RecvBytes), float64(c.SendBytes)} })
	}},
	{table: "connection_metrics", labels: labelsChannel, families: []promFamily{
		{"connection_incoming_packets_total", "counter", "Total number of packets received on a connection"},
		{"connection_outgoing_packets_total", "counter", "Total number of packets sent on a connection"},
		{"connection_pending_packets", "gauge", "Number of packets waiting to be sent on a connection"},
		{"connection_channels", "gauge", "Channels on a connection"},
	}, rows: func(s *scrape) []promRow {
		return connRows(s, func(c *amqp.ConnectionInfo) []float64 {
			return []float64{float64(c.RecvCount), float64(c.SendCount), float64(c.PendingBytes), float64(c.Channels)}
		})
	}},
	{table: "channel_queue_exchange_metrics", labels: labelsQueue, queueScoped: true, families: []promFamily{
		{"queue_messages_published_total", "counter", "Total number of messages published to queues"},
	}, rows: func(s *scrape) []promRow {
		return queueRows(s, func(r *promRow) []float64 { return []float64{r.v[4]} })
	}},
}

// Warren's own per-queue families, beyond RabbitMQ's: per-object output only.
var warrenQueueFamilies = []promFamily{
	{"queue_messages_delivered_total", "counter", "Total number of messages delivered to consumers or fetched with basic.get"},
	{"queue_messages_acked_total", "counter", "Total number of messages acknowledged by consumers"},
	{"queue_messages_dead_lettered_total", "counter", "Total number of messages dead-lettered from a queue"},
}

func queueRows(s *scrape, f func(r *promRow) []float64) []promRow {
	out := make([]promRow, len(s.queues))
	for i := range s.queues {
		r := &s.queues[i]
		out[i] = promRow{vhost: r.vhost, name: r.name, dlq: r.dlq, v: f(r)}
	}
	return out
}

func channelRows(s *scrape, f func(c *amqp.ChannelInfo) []float64) []promRow {
	out := make([]promRow, len(s.channels))
	for i := range s.channels {
		out[i] = promRow{name: s.channels[i].Name, v: f(&s.channels[i])}
	}
	return out
}

func connRows(s *scrape, f func(c *amqp.ConnectionInfo) []float64) []promRow {
	out := make([]promRow, len(s.conns))
	for i := range s.conns {
		out[i] = promRow{name: s.conns[i].Name, v: f(&s.conns[i])}
	}
	return out
}

func (a *API) takeScrape(extra bool) (*scrape, [][]float64) {
	s := &scrape{started: a.started, churn: a.srv.Churn(), res: a.broker.Resources()}
	var warren [][]float64
	for _, v := range a.broker.VHosts() {
		var dlqs map[string]bool
		if extra {
			dlqs = deadLetterQueues(v)
		}
		for _, q := range v.Queues() {
			st := q.Stats()
			s.queues = append(s.queues, promRow{vhost: v.Name, name: q.Declared().Name, dlq: dlqs[q.Declared().Name],
				v: []float64{float64(st.Ready), float64(st.Unacked), float64(st.Consumers), float64(st.ReadyBytes), float64(st.Published)}})
			if extra {
				warren = append(warren, []float64{float64(st.Delivered), float64(st.Acked), float64(st.DeadLettered)})
			}
		}
	}
	s.conns = a.srv.Connections()
	s.channels = a.srv.Channels()
	return s, warren
}

func (a *API) writeMetrics(b *bytes.Buffer, mode scrapeMode, families, vhosts map[string]bool) {
	s, warren := a.takeScrape(mode == scrapePerObject)
	w := promWriter{b: b}
	prefix := "rabbitmq_"
	if mode == scrapeDetailed {
		prefix = "rabbitmq_detailed_"
	}
	for _, g := range promGroups {
		if mode == scrapeDetailed && !families[g.table] {
			continue
		}
		rows := g.rows(s)
		if mode == scrapeDetailed && g.queueScoped && vhosts != nil {
			rows = slices.DeleteFunc(rows, func(r promRow) bool { return !vhosts[r.vhost] })
		}
		perObject := mode != scrapeAggregated && g.labels != labelsNone
		if !perObject && len(rows) != 1 {
			rows = []promRow{sumRows(rows, len(g.families))}
		}
		for i, f := range g.families {
			w.header(prefix+f.name, f.typ, f.help)
			for j := range rows {
				r := &rows[j]
				w.sample(prefix+f.name, g.labels, perObject, r, r.v[i])
			}
		}
	}
	if mode == scrapePerObject {
		for i, f := range warrenQueueFamilies {
			w.header(prefix+f.name, f.typ, f.help)
			for j := range s.queues {
				w.sample(prefix+f.name, labelsQueue, true, &s.queues[j], warren[j][i])
			}
		}
	}
	if mode == scrapeDetailed {
		a.writeClusterFamilies(&w, families)
	} else {
		a.writeTotals(&w, s)
	}
	if mode == scrapeAggregated {
		a.writeGlobal(&w, s)
		a.writeAlarms(&w)
	}
	if mode != scrapeDetailed || families["auth_attempt_metrics"] {
		a.writeAuthAttempts(&w, prefix)
	}
	a.writeIdentity(&w)
}

// writeAuthAttempts is rabbitmq_prometheus' auth_attempt_metrics group:
// login attempts by protocol (amqp091, http).
func (a *API) writeAuthAttempts(w *promWriter, prefix string) {
	counts := a.broker.AuthAttempts()
	for _, f := range []struct {
		name, help string
		value      func(broker.AuthAttemptCount) uint64
	}{
		{"auth_attempts_total", "Total number of authorization attempts", func(c broker.AuthAttemptCount) uint64 { return c.Succeeded + c.Failed }},
		{"auth_attempts_succeeded_total", "Total number of successful authentication attempts", func(c broker.AuthAttemptCount) uint64 { return c.Succeeded }},
		{"auth_attempts_failed_total", "Total number of failed authentication attempts", func(c broker.AuthAttemptCount) uint64 { return c.Failed }},
	} {
		w.header(prefix+f.name, "counter", f.help)
		for _, c := range counts {
			w.raw(prefix+f.name, `protocol="`+c.Protocol+`"`, float64(f.value(c)))
		}
	}
}

func sumRows(rows []promRow, n int) promRow {
	sum := promRow{v: make([]float64, n)}
	for _, r := range rows {
		for i, v := range r.v {
			sum.v[i] += v
		}
	}
	return sum
}

func (a *API) writeTotals(w *promWriter, s *scrape) {
	consumers := 0
	for _, c := range s.channels {
		consumers += c.Consumers
	}
	w.single("rabbitmq_connections", "gauge", "Connections currently open", float64(len(s.conns)))
	w.single("rabbitmq_channels", "gauge", "Channels currently open", float64(len(s.channels)))
	w.single("rabbitmq_consumers", "gauge", "Consumers currently connected", float64(consumers))
	w.single("rabbitmq_queues", "gauge", "Queues available", float64(len(s.queues)))
}

// writeGlobal is rabbitmq_global_*: node-wide totals that, unlike the
// channel families, keep counting what closed channels did.
func (a *API) writeGlobal(w *promWriter, s *scrape) {
	t := a.srv.MessageTotals()
	const proto = `protocol="amqp091"`
	// Warren does not split deliveries by queue type: all are counted as
	// classic queues', with quorum and stream series at 0, so that sums
	// over queue_type, as the dashboards make, are right.
	const classic = `protocol="amqp091",queue_type="rabbit_classic_queue"`
	others := []string{`protocol="amqp091",queue_type="rabbit_quorum_queue"`, `protocol="amqp091",queue_type="rabbit_stream_queue"`}
	for _, c := range []struct {
		name, typ, help string
		v               uint64
	}{
		{"messages_received_total", "counter", "Total number of messages received from publishers", t.Received},
		{"messages_received_confirm_total", "counter", "Total number of messages received from publishers expecting confirmations", t.ReceivedConfirm},
		{"messages_routed_total", "counter", "Total number of messages routed to queues or streams", t.Routed},
		{"messages_unroutable_dropped_total", "counter", "Total number of messages published as non-mandatory into an exchange and dropped as unroutable", t.UnroutableDropped},
		{"messages_unroutable_returned_total", "counter", "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable", t.UnroutableReturned},
		{"messages_confirmed_total", "counter", "Total number of messages confirmed to publishers", t.Confirmed},
	} {
		w.header("rabbitmq_global_"+c.name, c.typ, c.help)
		w.raw("rabbitmq_global_"+c.name, proto, float64(c.v))
	}
	publishers, consumers := 0, 0
	for _, c := range s.channels {
		consumers += c.Consumers
		if c.Totals.Received > 0 {
			publishers++
		}
	}
	w.header("rabbitmq_global_publishers", "gauge", "Current number of publishers")
	w.raw("rabbitmq_global_publishers", proto, float64(publishers))
	w.header("rabbitmq_global_consumers", "gauge", "Current number of consumers")
	w.raw("rabbitmq_global_consumers", proto, float64(consumers))
	for _, c := range []struct {
		name, help string
		v          uint64
	}{
		{"messages_delivered_total", "Total number of messages delivered to consumers", t.Delivered()},
		{"messages_delivered_consume_manual_ack_total", "Total number of messages delivered to consumers using basic.consume with manual acknowledgment", t.DeliveredConsumeManualAck},
		{"messages_delivered_consume_auto_ack_total", "Total number of messages delivered to consumers using basic.consume with automatic acknowledgment", t.DeliveredConsumeAutoAck},
		{"messages_delivered_get_manual_ack_total", "Total number of messages delivered to consumers using basic.get with manual acknowledgment", t.DeliveredGetManualAck},
		{"messages_delivered_get_auto_ack_total", "Total number of messages delivered to consumers using basic.get with automatic acknowledgment", t.DeliveredGetAutoAck},
		{"messages_get_empty_total", "Total number of times basic.get operations fetched no message", t.GetEmpty},
		{"messages_redelivered_total", "Total number of messages redelivered to consumers", t.Redelivered},
		{"messages_acknowledged_total", "Total number of messages acknowledged by consumers", t.Acknowledged},
	} {
		name := "rabbitmq_global_" + c.name
		w.header(name, "counter", c.help)
		w.raw(name, classic, float64(c.v))
		for _, l := range others {
			w.raw(name, l, 0)
		}
	}
}

func (a *API) writeAlarms(w *promWriter) {
	memory, disk := a.broker.Alarms()
	b := func(on bool) float64 {
		if on {
			return 1
		}
		return 0
	}
	// Warren raises no file descriptor alarm: it is always 0, as on a
	// RabbitMQ node far from its limit.
	w.single("rabbitmq_alarms_file_descriptor_limit", "gauge", "is 1 if file descriptor limit alarm is in effect", 0)
	w.single("rabbitmq_alarms_free_disk_space_watermark", "gauge", "is 1 if free disk space watermark alarm is in effect", b(disk))
	w.single("rabbitmq_alarms_memory_used_watermark", "gauge", "is 1 if VM memory watermark alarm is in effect", b(memory))
}

// writeClusterFamilies is /metrics/detailed's rabbitmq_cluster_* groups.
func (a *API) writeClusterFamilies(w *promWriter, families map[string]bool) {
	vhs := a.broker.VHosts()
	if families["vhost_status"] {
		w.header("rabbitmq_cluster_vhost_status", "gauge", "Whether a given vhost is running")
		for _, v := range vhs {
			up := 1.0
			if v.Deleted() {
				up = 0
			}
			w.raw("rabbitmq_cluster_vhost_status", `vhost="`+escapeLabel(v.Name)+`"`, up)
		}
	}
	for _, g := range []struct {
		table, name, help string
		bindings          bool
	}{
		{"exchange_bindings", "rabbitmq_cluster_exchange_bindings", "Number of bindings for an exchange. This value is cluster-wide.", true},
		{"exchange_names", "rabbitmq_cluster_exchange_name", "Enumerates exchanges without any additional info. This value is cluster-wide. A cheaper alternative to `exchange_bindings`", false},
	} {
		if !families[g.table] {
			continue
		}
		w.header(g.name, "gauge", g.help)
		for _, v := range vhs {
			for _, e := range v.Exchanges() {
				// As RabbitMQ: the default exchange and internal ones are left out.
				if e.Name == "" || e.Internal {
					continue
				}
				val := 1.0
				if g.bindings {
					val = float64(len(e.Bindings()))
				}
				w.raw(g.name, `vhost="`+escapeLabel(v.Name)+`",exchange="`+escapeLabel(e.Name)+`",type="`+e.Kind.String()+`"`, val)
			}
		}
	}
}

// writeIdentity is rabbitmq_build_info and rabbitmq_identity_info: every
// panel of RabbitMQ's dashboards joins on the latter.
func (a *API) writeIdentity(w *promWriter) {
	id := a.srv.Identity()
	w.header("rabbitmq_build_info", "untyped", "RabbitMQ & Erlang/OTP version info")
	// erlang_version has no meaning for Warren: it carries Warren's and
	// Go's versions instead.
	w.raw("rabbitmq_build_info", `rabbitmq_version="`+escapeLabel(id.Version)+`",prometheus_plugin_version="`+escapeLabel(id.Version)+
		`",prometheus_client_version="`+escapeLabel(broker.Version)+`",erlang_version="Warren `+escapeLabel(broker.Version)+" / "+runtime.Version()+`"`, 1)
	w.header("rabbitmq_identity_info", "untyped", "RabbitMQ node & cluster identity info")
	w.raw("rabbitmq_identity_info", `rabbitmq_node="`+escapeLabel(a.node)+`",rabbitmq_cluster="`+escapeLabel(a.broker.ClusterName())+
		`",rabbitmq_cluster_permanent_id="`+escapeLabel(a.clusterID())+`"`, 1)
}

// promWriter writes the text exposition format.
type promWriter struct{ b *bytes.Buffer }

func (w *promWriter) header(name, typ, help string) {
	b := w.b
	b.WriteString("# TYPE ")
	b.WriteString(name)
	b.WriteByte(' ')
	b.WriteString(typ)
	b.WriteString("\n# HELP ")
	b.WriteString(name)
	b.WriteByte(' ')
	b.WriteString(help)
	b.WriteByte('\n')
}

func (w *promWriter) single(name, typ, help string, v float64) {
	w.header(name, typ, help)
	w.raw(name, "", v)
}

// raw writes one sample with labels already formatted.
func (w *promWriter) raw(name, labels string, v float64) {
	b := w.b
	b.WriteString(name)
	if labels != "" {
		b.WriteByte('{')
		b.WriteString(labels)
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(num(v))
	b.WriteByte('\n')
}

func (w *promWriter) sample(name string, layout int, perObject bool, r *promRow, v float64) {
	b := w.b
	b.WriteString(name)
	if perObject {
		switch layout {
		case labelsQueue:
			b.WriteString(`{vhost="`)
			b.WriteString(escapeLabel(r.vhost))
			b.WriteString(`",queue="`)
			b.WriteString(escapeLabel(r.name))
			if r.dlq {
				b.WriteString(`",dlq="true`)
			}
			b.WriteString(`"}`)
		case labelsChannel:
			b.WriteString(`{channel="`)
			b.WriteString(escapeLabel(r.name))
			b.WriteString(`"}`)
		}
	}
	b.WriteByte(' ')
	b.WriteString(num(v))
	b.WriteByte('\n')
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }

// clusterID is rabbitmq_cluster_permanent_id: made once and kept in the
// data directory, as RabbitMQ keeps its in the schema database.
func (a *API) clusterID() string {
	a.promID.Do(func() {
		path := a.broker.DataDir() + "/cluster-id"
		if b, err := os.ReadFile(path); err == nil && len(bytes.TrimSpace(b)) > 0 {
			a.promIDValue = string(bytes.TrimSpace(b))
			return
		}
		id := "rabbitmq-cluster-id-" + generateClusterID()
		if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
			a.log.Warn("cannot keep the cluster id", "path", path, "err", err)
		}
		a.promIDValue = id
	})
	return a.promIDValue
}

// generateClusterID is 16 random bytes, URL-safe base64, as RabbitMQ's.
func generateClusterID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// rss is the process's resident memory, as the memory alarm reads it; 0
// where the system does not report it.
func rss() uint64 {
	n, _ := sysinfo.ResidentMemory()
	return n
}
