package management

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/warrenmq/warren/broker/sysinfo"
)

// Metrics returns the Prometheus handler (serve it at /metrics): the text
// exposition format with rabbitmq_prometheus' names. Queues that are some
// queue's dead-letter target carry dlq="true".
func (a *API) Metrics() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		a.writeMetrics(&b)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write(b.Bytes())
	})
}

type queueMetric struct {
	name, help, typ string
	value           func(m *queueSample) float64
}

type queueSample struct {
	vhost, name string
	dlq         bool
	ready       int
	unacked     int
	consumers   int
	published   uint64
	delivered   uint64
	acked       uint64
	deadLetters uint64
}

var queueMetrics = []queueMetric{
	{"rabbitmq_queue_messages_ready", "Messages ready to be delivered to consumers", "gauge", func(m *queueSample) float64 { return float64(m.ready) }},
	{"rabbitmq_queue_messages_unacked", "Messages delivered to consumers but not yet acknowledged", "gauge", func(m *queueSample) float64 { return float64(m.unacked) }},
	{"rabbitmq_queue_messages", "Sum of ready and unacknowledged messages", "gauge", func(m *queueSample) float64 { return float64(m.ready + m.unacked) }},
	{"rabbitmq_queue_consumers", "Consumers on a queue", "gauge", func(m *queueSample) float64 { return float64(m.consumers) }},
	{"rabbitmq_queue_messages_published_total", "Total number of messages published to queues", "counter", func(m *queueSample) float64 { return float64(m.published) }},
	{"rabbitmq_queue_messages_delivered_total", "Total number of messages delivered to consumers or fetched with basic.get", "counter", func(m *queueSample) float64 { return float64(m.delivered) }},
	{"rabbitmq_queue_messages_acked_total", "Total number of messages acknowledged by consumers", "counter", func(m *queueSample) float64 { return float64(m.acked) }},
	{"rabbitmq_queue_messages_dead_lettered_total", "Total number of messages dead-lettered from a queue", "counter", func(m *queueSample) float64 { return float64(m.deadLetters) }},
}

func (a *API) writeMetrics(b *bytes.Buffer) {
	var qs []queueSample
	consumers := 0
	for _, v := range a.broker.VHosts() {
		dlqs := deadLetterQueues(v)
		for _, q := range v.Queues() {
			st := q.Stats()
			consumers += st.Consumers
			qs = append(qs, queueSample{vhost: v.Name, name: q.Name, dlq: dlqs[q.Name], ready: st.Ready, unacked: st.Unacked,
				consumers: st.Consumers, published: st.Published, delivered: st.Delivered, acked: st.Acked, deadLetters: st.DeadLettered})
		}
	}
	gauge := func(name, help, typ string, v float64) {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", name, help, name, typ, name, num(v))
	}
	gauge("rabbitmq_connections", "Connections currently open", "gauge", float64(a.srv.ConnectionCount()))
	gauge("rabbitmq_channels", "Channels currently open", "gauge", float64(len(a.srv.Channels())))
	gauge("rabbitmq_consumers", "Consumers currently connected", "gauge", float64(consumers))
	gauge("rabbitmq_queues", "Queues available", "gauge", float64(len(qs)))
	gauge("rabbitmq_process_resident_memory_bytes", "Memory used in bytes", "gauge", float64(rss()))
	for _, m := range queueMetrics {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", m.name, m.help, m.name, m.typ)
		for i := range qs {
			s := &qs[i]
			b.WriteString(m.name)
			b.WriteString(`{vhost="`)
			b.WriteString(escapeLabel(s.vhost))
			b.WriteString(`",queue="`)
			b.WriteString(escapeLabel(s.name))
			if s.dlq {
				b.WriteString(`",dlq="true`)
			}
			b.WriteString(`"} `)
			b.WriteString(num(m.value(s)))
			b.WriteByte('\n')
		}
	}
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }

// rss is the process's resident memory, as the memory alarm reads it; 0
// where the system does not report it.
func rss() uint64 {
	n, _ := sysinfo.ResidentMemory()
	return n
}
