package conformance

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	rabbithole "github.com/michaelklishin/rabbit-hole/v2"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mgmtURLEnv points TestRabbitHole at a RabbitMQ's management API instead
// of an in-process Warren, so its table can be checked against RabbitMQ
// (with WARREN_TEST_AMQP_URL naming the same node's AMQP port).
const mgmtURLEnv = "WARREN_TEST_MGMT_URL"

// TestRabbitHole drives the management API through Go's rabbit-hole
// client, the calls its own integration suite makes, in order: each step
// changes or reads the state the steps before it left.
func TestRabbitHole(t *testing.T) {
	apiURL, amqpURL := os.Getenv(mgmtURLEnv), os.Getenv(externalURLEnv)
	if apiURL == "" {
		b := newAdminBroker(t)
		apiURL, amqpURL = b.http.URL, b.srv.URL
	}
	rh, err := rabbithole.NewClient(apiURL, "guest", "guest")
	require.NoError(t, err)
	const vh = "rabbithole-test"
	amqpIn := func(t *testing.T, user, pass string) *amqp091.Connection {
		u, err := url.Parse(amqpURL)
		require.NoError(t, err)
		u.User, u.Path = url.UserPassword(user, pass), "/"+url.PathEscape(vh)
		conn, err := amqp091.Dial(u.String())
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		return conn
	}
	status := func(t *testing.T, want int, res *http.Response, err error) {
		t.Helper()
		if err != nil {
			var er rabbithole.ErrorResponse
			if assert.ErrorAs(t, err, &er) {
				assert.Equal(t, want, er.StatusCode, er.Error())
			}
			return
		}
		assert.Equal(t, want, res.StatusCode)
	}
	errStatus := func(t *testing.T, want int, err error) {
		t.Helper()
		var er rabbithole.ErrorResponse
		if assert.ErrorAs(t, err, &er) {
			assert.Equal(t, want, er.StatusCode, er.Error())
		}
	}
	getJSON := func(t *testing.T, u string, out any) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, u, nil)
		require.NoError(t, err)
		req.SetBasicAuth("guest", "guest")
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		require.Equal(t, 200, res.StatusCode)
		require.NoError(t, json.NewDecoder(res.Body).Decode(out))
	}
	_, _ = rh.DeleteVhost(vh)
	_, _ = rh.DeleteUser("rh-user")
	t.Cleanup(func() {
		_, _ = rh.DeleteVhost(vh)
		_, _ = rh.DeleteUser("rh-user")
	})

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"Overview", func(t *testing.T) {
			ov, err := rh.Overview()
			require.NoError(t, err)
			assert.NotEmpty(t, ov.Node)
			assert.NotEmpty(t, ov.Listeners)
			assert.Equal(t, "3.10.8", ov.RabbitMQVersion)
		}},
		{"Whoami", func(t *testing.T) {
			w, err := rh.Whoami()
			require.NoError(t, err)
			assert.Equal(t, "guest", w.Name)
		}},
		{"PutVhost", func(t *testing.T) {
			res, err := rh.PutVhost(vh, rabbithole.VhostSettings{Description: "rh", Tags: rabbithole.VhostTags{"a"}})
			status(t, 201, res, err)
			v, err := rh.GetVhost(vh)
			require.NoError(t, err)
			assert.Equal(t, vh, v.Name)
		}},
		{"ListNodes and GetNode", func(t *testing.T) {
			ns, err := rh.ListNodes()
			require.NoError(t, err)
			require.Len(t, ns, 1)
			n, err := rh.GetNode(ns[0].Name)
			require.NoError(t, err)
			assert.Equal(t, ns[0].Name, n.Name)
			assert.True(t, n.IsRunning)
		}},
		{"ClusterName", func(t *testing.T) {
			old, err := rh.GetClusterName()
			require.NoError(t, err)
			res, err := rh.SetClusterName(rabbithole.ClusterName{Name: "rabbit-hole-test"})
			status(t, 204, res, err)
			cn, err := rh.GetClusterName()
			require.NoError(t, err)
			assert.Equal(t, "rabbit-hole-test", cn.Name)
			var ov struct {
				ClusterName string `json:"cluster_name"`
			}
			getJSON(t, apiURL+"/api/overview", &ov)
			assert.Equal(t, "rabbit-hole-test", ov.ClusterName)
			res, err = rh.SetClusterName(*old)
			status(t, 204, res, err)
		}},
		{"PutUser and permissions", func(t *testing.T) {
			res, err := rh.PutUser("rh-user", rabbithole.UserSettings{Password: "s3cret", Tags: rabbithole.UserTags{"management"}})
			status(t, 201, res, err)
			res, err = rh.UpdatePermissionsIn(vh, "rh-user", rabbithole.Permissions{Configure: ".*", Write: ".*", Read: ".*"})
			status(t, 201, res, err)
			p, err := rh.GetPermissionsIn(vh, "rh-user")
			require.NoError(t, err)
			assert.Equal(t, ".*", p.Write)
			ps, err := rh.ListPermissionsOf("rh-user")
			require.NoError(t, err)
			assert.Len(t, ps, 1)
		}},
		{"DeclareQueue with arguments", func(t *testing.T) {
			res, err := rh.DeclareQueue(vh, "rh.q", rabbithole.QueueSettings{Durable: true, Arguments: map[string]any{"x-max-length": 10, "x-queue-mode": "lazy"}})
			status(t, 201, res, err)
			q, err := rh.GetQueue(vh, "rh.q")
			require.NoError(t, err)
			assert.EqualValues(t, 10, q.Arguments["x-max-length"])
			assert.True(t, q.Durable)
		}},
		{"DeclareExchange and binding with Location", func(t *testing.T) {
			res, err := rh.DeclareExchange(vh, "rh.x", rabbithole.ExchangeSettings{Type: "topic", Durable: true})
			status(t, 201, res, err)
			res, err = rh.DeclareBinding(vh, rabbithole.BindingInfo{Source: "rh.x", Destination: "rh.q", DestinationType: "queue", RoutingKey: "a.#"})
			status(t, 201, res, err)
			if res != nil {
				assert.Equal(t, "rh.q/a.%2523", res.Header.Get("Location"))
			}
			bs, err := rh.ListQueueBindingsBetween(vh, "rh.x", "rh.q")
			require.NoError(t, err)
			require.Len(t, bs, 1)
			assert.Equal(t, "a.#", bs[0].RoutingKey)
		}},
		{"PagedListQueues", func(t *testing.T) {
			for _, n := range []string{"rh.p1", "rh.p2", "rh.p3"} {
				res, err := rh.DeclareQueue(vh, n, rabbithole.QueueSettings{Durable: false})
				status(t, 201, res, err)
			}
			page, err := rh.PagedListQueuesWithParametersIn(vh, url.Values{"page": {"1"}, "page_size": {"2"}, "name": {"rh.p"}})
			require.NoError(t, err)
			assert.Equal(t, 3, page.FilteredCount)
			assert.Equal(t, 4, page.TotalCount)
			assert.Equal(t, 2, page.PageCount)
			require.Len(t, page.Items, 2)
			assert.Equal(t, "rh.p1", page.Items[0].Name)
			qs, err := rh.ListQueuesWithParametersIn(vh, url.Values{"sort": {"name"}, "sort_reverse": {"true"}, "columns": {"name,vhost"}})
			require.NoError(t, err)
			require.Len(t, qs, 4)
			assert.Equal(t, "rh.q", qs[0].Name)
		}},
		{"Connections, channels and closing by user", func(t *testing.T) {
			conn := amqpIn(t, "rh-user", "s3cret")
			_, err := conn.Channel()
			require.NoError(t, err)
			closed := conn.NotifyClose(make(chan *amqp091.Error, 1))
			var cname string
			require.Eventually(t, func() bool {
				cs, err := rh.ListVhostConnections(vh)
				if err != nil || len(cs) != 1 {
					return false
				}
				cname = cs[0].Name
				return true
			}, 5*time.Second, 20*time.Millisecond)
			c, err := rh.GetConnection(cname)
			require.NoError(t, err)
			assert.Equal(t, "rh-user", c.User)
			var chName string
			require.Eventually(t, func() bool {
				chs, err := rh.ListChannels()
				for _, ch := range chs {
					if err == nil && ch.Vhost == vh {
						chName = ch.Name
					}
				}
				return chName != ""
			}, 5*time.Second, 20*time.Millisecond)
			ch, err := rh.GetChannel(chName)
			require.NoError(t, err)
			assert.Equal(t, "rh-user", ch.User)
			req, err := http.NewRequest(http.MethodDelete, apiURL+"/api/connections/username/rh-user", nil)
			require.NoError(t, err)
			req.SetBasicAuth("guest", "guest")
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			res.Body.Close()
			assert.Equal(t, 204, res.StatusCode)
			select {
			case e := <-closed:
				require.NotNil(t, e)
				assert.Equal(t, 320, e.Code)
			case <-time.After(5 * time.Second):
				t.Fatal("the connection was not closed")
			}
		}},
		{"Policies and operator policies", func(t *testing.T) {
			res, err := rh.PutPolicy(vh, "rh-pol", rabbithole.Policy{Pattern: "^rh\\.", ApplyTo: "queues", Priority: 1,
				Definition: rabbithole.PolicyDefinition{"max-length": 100}})
			status(t, 201, res, err)
			p, err := rh.GetPolicy(vh, "rh-pol")
			require.NoError(t, err)
			assert.Equal(t, "queues", p.ApplyTo)
			res, err = rh.PutOperatorPolicy(vh, "rh-op", rabbithole.OperatorPolicy{Pattern: "^rh\\.", ApplyTo: "queues", Priority: 1,
				Definition: rabbithole.PolicyDefinition{"max-length": 50}})
			status(t, 201, res, err)
			op, err := rh.GetOperatorPolicy(vh, "rh-op")
			require.NoError(t, err)
			assert.EqualValues(t, 50, op.Definition["max-length"])
			ops, err := rh.ListOperatorPoliciesIn(vh)
			require.NoError(t, err)
			assert.Len(t, ops, 1)
			res, err = rh.DeleteOperatorPolicy(vh, "rh-op")
			status(t, 204, res, err)
			_, err = rh.GetOperatorPolicy(vh, "rh-op")
			errStatus(t, 404, err)
		}},
		{"Runtime parameters", func(t *testing.T) {
			_, err := rh.GetRuntimeParameter("shovel", vh, "nope")
			errStatus(t, 404, err)
			res, err := rh.PutRuntimeParameter("no-such-component", vh, "p", map[string]any{"a": 1})
			status(t, 400, res, err)
			ps, err := rh.ListRuntimeParametersIn("shovel", vh)
			require.NoError(t, err)
			assert.Empty(t, ps)
		}},
		{"Global parameters", func(t *testing.T) {
			res, err := rh.PutGlobalParameter("rh-global", map[string]any{"endpoint": "http://127.0.0.1/"})
			status(t, 201, res, err)
			p, err := rh.GetGlobalParameter("rh-global")
			require.NoError(t, err)
			assert.Equal(t, map[string]any{"endpoint": "http://127.0.0.1/"}, p.Value)
			ps, err := rh.ListGlobalParameters()
			require.NoError(t, err)
			names := []string{}
			for _, p := range ps {
				names = append(names, p.Name)
			}
			assert.Contains(t, names, "rh-global")
			res, err = rh.DeleteGlobalParameter("rh-global")
			status(t, 204, res, err)
			_, err = rh.GetGlobalParameter("rh-global")
			errStatus(t, 404, err)
		}},
		{"Topic permissions", func(t *testing.T) {
			res, err := rh.UpdateTopicPermissionsIn(vh, "rh-user", rabbithole.TopicPermissions{Exchange: "rh.x", Write: "^a\\.", Read: "^r\\."})
			status(t, 201, res, err)
			// 204 once the user has any topic permission in the vhost, as RabbitMQ.
			res, err = rh.UpdateTopicPermissionsIn(vh, "rh-user", rabbithole.TopicPermissions{Exchange: "amq.topic", Write: "^{username}\\.", Read: ".*"})
			status(t, 204, res, err)
			res, err = rh.UpdateTopicPermissionsIn(vh, "rh-user", rabbithole.TopicPermissions{Exchange: "rh.x", Write: "^a\\.", Read: "^r\\."})
			status(t, 204, res, err)
			tps, err := rh.GetTopicPermissionsIn(vh, "rh-user")
			require.NoError(t, err)
			require.Len(t, tps, 2)
			all, err := rh.ListTopicPermissionsOf("rh-user")
			require.NoError(t, err)
			assert.Len(t, all, 2)
			conn := amqpIn(t, "rh-user", "s3cret")
			ch, err := conn.Channel()
			require.NoError(t, err)
			require.NoError(t, ch.QueueBind("rh.q", "r.ok", "rh.x", false, nil))
			require.NoError(t, ch.QueueUnbind("rh.q", "r.ok", "rh.x", nil))
			err = ch.QueueBind("rh.q", "a.refused", "rh.x", false, nil)
			var ae *amqp091.Error
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, 403, ae.Code)
			assert.Equal(t, "ACCESS_REFUSED - access to topic 'a.refused' in exchange 'rh.x' in vhost '"+vh+"' refused for user 'rh-user'", ae.Reason)
			ch, err = conn.Channel()
			require.NoError(t, err)
			require.NoError(t, ch.Publish("amq.topic", "rh-user.ok", false, false, amqp091.Publishing{Body: []byte("x")}))
			require.NoError(t, ch.Publish("rh.x", "a.ok", false, false, amqp091.Publishing{Body: []byte("x")}))
			closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
			require.NoError(t, ch.Publish("rh.x", "b.refused", false, false, amqp091.Publishing{Body: []byte("x")}))
			select {
			case e := <-closed:
				require.NotNil(t, e)
				assert.Equal(t, 403, e.Code)
				assert.Equal(t, "ACCESS_REFUSED - access to topic 'b.refused' in exchange 'rh.x' in vhost '"+vh+"' refused for user 'rh-user'", e.Reason)
			case <-time.After(5 * time.Second):
				t.Fatal("the publish was not refused")
			}
			res, err = rh.DeleteTopicPermissionsIn(vh, "rh-user", "rh.x")
			status(t, 204, res, err)
			tps, err = rh.GetTopicPermissionsIn(vh, "rh-user")
			require.NoError(t, err)
			assert.Len(t, tps, 1)
			res, err = rh.ClearTopicPermissionsIn(vh, "rh-user")
			status(t, 204, res, err)
			tps, err = rh.GetTopicPermissionsIn(vh, "rh-user")
			errStatus(t, 404, err)
			assert.Empty(t, tps)
		}},
		{"Vhost and user limits", func(t *testing.T) {
			res, err := rh.PutVhostLimits(vh, rabbithole.VhostLimitsValues{"max-connections": 5, "max-queues": 9})
			status(t, 204, res, err)
			ls, err := rh.GetVhostLimits(vh)
			require.NoError(t, err)
			require.Len(t, ls, 1)
			assert.Equal(t, 9, ls[0].Value["max-queues"])
			res, err = rh.DeleteVhostLimits(vh, rabbithole.VhostLimits{"max-connections", "max-queues"})
			status(t, 204, res, err)
			res, err = rh.PutUserLimits("rh-user", rabbithole.UserLimitsValues{"max-channels": 3})
			status(t, 204, res, err)
			uls, err := rh.GetUserLimits("rh-user")
			require.NoError(t, err)
			require.Len(t, uls, 1)
			assert.Equal(t, 3, uls[0].Value["max-channels"])
			res, err = rh.DeleteUserLimits("rh-user", rabbithole.UserLimits{"max-channels"})
			status(t, 204, res, err)
		}},
		{"Vhost definitions", func(t *testing.T) {
			d, err := rh.ListVhostDefinitions(vh)
			require.NoError(t, err)
			require.NotNil(t, d.Queues)
			names := []string{}
			for _, q := range *d.Queues {
				names = append(names, q.Name)
				assert.Empty(t, q.Vhost)
			}
			assert.Contains(t, names, "rh.q")
			all, err := rh.ListDefinitions()
			require.NoError(t, err)
			assert.NotEmpty(t, *all.Vhosts)
		}},
		{"Consumers, exchanges and bindings lists", func(t *testing.T) {
			_, err := rh.ListConsumersIn(vh)
			require.NoError(t, err)
			xs, err := rh.ListExchangesIn(vh)
			require.NoError(t, err)
			assert.Len(t, xs, 8) // the seven predeclared ones and rh.x
			bs, err := rh.ListBindingsIn(vh)
			require.NoError(t, err)
			assert.Len(t, bs, 5) // four default-exchange ones and a.#
		}},
		{"DeleteQueue, DeleteExchange, DeleteUser, DeleteVhost", func(t *testing.T) {
			res, err := rh.DeleteQueue(vh, "rh.q")
			status(t, 204, res, err)
			res, err = rh.DeleteExchange(vh, "rh.x")
			status(t, 204, res, err)
			res, err = rh.DeleteUser("rh-user")
			status(t, 204, res, err)
			res, err = rh.DeleteVhost(vh)
			status(t, 204, res, err)
			_, err = rh.GetVhost(vh)
			errStatus(t, 404, err)
		}},
	}
	// missing are the steps Warren does not pass yet (the README lists
	// them under Missing); they are skipped against Warren only.
	missing := map[string]string{}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if m := missing[s.name]; m != "" && os.Getenv(mgmtURLEnv) == "" {
				t.Skip("Warren has no " + m + " yet")
			}
			s.run(t)
		})
	}
}
