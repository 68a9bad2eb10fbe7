package conformance

// Users, vhosts and permissions made at run time through the management HTTP
// API, used over AMQP, and kept across a restart. The texts were checked
// against RabbitMQ 3.10's sources: rabbit_connection_tracking closes a
// deleted vhost's or user's connections with "vhost 'v' is deleted" and
// "user 'u' is deleted", which rabbit_reader sends as 320 CONNECTION_FORCED.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/management"
	"github.com/warrenmq/warren/shovel"
)

// adminBroker is a restartableBroker with its management API, started and
// stopped with it.
type adminBroker struct {
	*restartableBroker
	api     *management.API
	http    *httptest.Server
	shovels *shovel.Manager
}

func newAdminBroker(t *testing.T) *adminBroker {
	t.Helper()
	b := &adminBroker{restartableBroker: newRestartableBroker(t)}
	b.startAPI()
	t.Cleanup(b.stopAPI) // before the broker's own stop
	return b
}

func (b *adminBroker) startAPI() {
	var err error
	b.shovels, err = shovel.NewManager(shovel.Options{Store: b.srv.Storage(), Local: b.srv.DialDirect})
	require.NoError(b.t, err)
	b.api = management.New(b.srv.Server, management.Options{Shovels: b.shovels})
	b.http = httptest.NewServer(b.api)
}

func (b *adminBroker) stopAPI() {
	if b.http == nil {
		return
	}
	b.http.Close()
	b.api.Close()
	b.shovels.Close()
	b.http, b.api, b.shovels = nil, nil, nil
}

// restart stops the broker and starts it again on the same data directory.
func (b *adminBroker) restart() {
	b.stopAPI()
	b.restartableBroker.restart()
	b.startAPI()
}

// do sends an API request as guest and returns the status.
func (b *adminBroker) do(method, path string, body any) int {
	b.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(b.t, err)
		rd = bytes.NewReader(raw)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, b.http.URL+path, rd)
	require.NoError(b.t, err)
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(b.t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// mustDo sends requests that must answer with the given status.
func (b *adminBroker) mustDo(status int, method, path string, body any) {
	b.t.Helper()
	require.Equal(b.t, status, b.do(method, path, body), "%s %s", method, path)
}

// dial logs in as user to vhost over AMQP.
func (b *adminBroker) dial(user, password, vh string) (*amqp091.Connection, error) {
	conn, err := amqp091.DialConfig("amqp://"+url.UserPassword(user, password).String()+"@"+b.srv.Addr+"/"+url.PathEscape(vh),
		amqp091.Config{Dial: amqp091.DefaultDial(timeout)})
	if err == nil {
		b.t.Cleanup(func() { _ = conn.Close() })
	}
	return conn, err
}

func (b *adminBroker) mustDial(user, password, vh string) (*amqp091.Connection, *amqp091.Channel) {
	b.t.Helper()
	conn, err := b.dial(user, password, vh)
	require.NoError(b.t, err)
	ch, err := conn.Channel()
	require.NoError(b.t, err)
	return conn, ch
}

// addTenant makes a vhost, a user and the user's permissions on it over HTTP.
func (b *adminBroker) addTenant(vh, user, password, configure string) {
	b.t.Helper()
	b.mustDo(http.StatusCreated, "PUT", "/api/vhosts/"+url.PathEscape(vh), nil)
	b.mustDo(http.StatusCreated, "PUT", "/api/users/"+url.PathEscape(user), map[string]any{"password": password, "tags": ""})
	b.mustDo(http.StatusCreated, "PUT", "/api/permissions/"+url.PathEscape(vh)+"/"+url.PathEscape(user),
		map[string]any{"configure": configure, "write": ".*", "read": ".*"})
}

// TestRuntimeAccessSurvivesRestart: a user, vhost and permissions made over
// HTTP let the user log in to the vhost over AMQP, and still do after the
// broker restarts on the same data directory, with the vhost's durable
// queue and persistent message recovered.
func TestRuntimeAccessSurvivesRestart(t *testing.T) {
	b := newAdminBroker(t)
	b.addTenant("tenant-a", "alice", "s3cret", ".*")
	_, ch := b.mustDial("alice", "s3cret", "tenant-a")
	_, err := ch.QueueDeclare("work", true, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.Confirm(false))
	publishConfirmed(t, ch, "", "work", amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte("kept")})

	b.restart()

	for _, tc := range []struct {
		name, user, password, vhost string
		err                         error // nil: logs in
	}{
		{"the new user on the new vhost", "alice", "s3cret", "tenant-a", nil},
		{"a wrong password", "alice", "wrong", "tenant-a", amqp091.ErrCredentials},
		{"the new user on / (no permissions)", "alice", "s3cret", "/", amqp091.ErrVhost},
		{"guest from the config", "guest", "guest", "/", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := b.dial(tc.user, tc.password, tc.vhost)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			requireConnUsable(t, conn)
		})
	}
	_, ch = b.mustDial("alice", "s3cret", "tenant-a")
	m, ok, err := ch.Get("work", true)
	require.NoError(t, err)
	require.True(t, ok, "the persistent message in the vhost's durable queue is recovered")
	require.Equal(t, "kept", string(m.Body))
}

// TestPermissionChangeAppliesToOpenConnections: new patterns apply to the
// next check of a connection that is already open (RabbitMQ would still
// allow, on a channel, the last 12 resources it checked successfully).
func TestPermissionChangeAppliesToOpenConnections(t *testing.T) {
	b := newAdminBroker(t)
	b.addTenant("tenant-p", "paul", "pw", ".*")
	conn, ch := b.mustDial("paul", "pw", "tenant-p")
	_, err := ch.QueueDeclare("orders", false, false, false, false, nil)
	require.NoError(t, err)

	b.mustDo(http.StatusNoContent, "PUT", "/api/permissions/tenant-p/paul", map[string]any{"configure": "^paul\\.", "write": ".*", "read": ".*"})
	for _, tc := range []struct {
		queue string
		text  string // "" for success
	}{
		{"paul.private", ""},
		{"orders", "ACCESS_REFUSED - access to queue 'orders' in vhost 'tenant-p' refused for user 'paul'"},
		{"invoices", "ACCESS_REFUSED - access to queue 'invoices' in vhost 'tenant-p' refused for user 'paul'"},
	} {
		t.Run(tc.queue, func(t *testing.T) {
			ch, err := conn.Channel()
			require.NoError(t, err)
			_, err = ch.QueueDeclare(tc.queue, false, false, false, false, nil)
			if tc.text == "" {
				require.NoError(t, err)
				return
			}
			requireAMQPError(t, err, amqp091.AccessRefused, tc.text)
		})
	}

	// Cleared permissions refuse everything, but do not close the
	// connection; a new connection is refused at connection.open.
	b.mustDo(http.StatusNoContent, "DELETE", "/api/permissions/tenant-p/paul", nil)
	ch, err = conn.Channel()
	require.NoError(t, err)
	_, err = ch.QueueDeclare("paul.again", false, false, false, false, nil)
	requireAMQPError(t, err, amqp091.AccessRefused, "ACCESS_REFUSED - access to queue 'paul.again' in vhost 'tenant-p' refused for user 'paul'")
	_, err = b.dial("paul", "pw", "tenant-p")
	require.ErrorIs(t, err, amqp091.ErrVhost)
}

// TestDeleteVhostClosesConnectionsAndDeletesQueues: deleting a vhost closes
// its connections with 320, leaves other vhosts' alone, and removes its
// queues, exchanges and messages, in memory and on disk: the vhost made
// again under the same name is empty, before and after a restart.
func TestDeleteVhostClosesConnectionsAndDeletesQueues(t *testing.T) {
	b := newAdminBroker(t)
	b.addTenant("doomed", "dora", "pw", ".*")
	conn, ch := b.mustDial("dora", "pw", "doomed")
	require.NoError(t, ch.ExchangeDeclare("events", "fanout", true, false, false, false, nil))
	for _, q := range []string{"durable.q", "other.q"} {
		_, err := ch.QueueDeclare(q, true, false, false, false, nil)
		require.NoError(t, err)
		require.NoError(t, ch.QueueBind(q, "", "events", false, nil))
	}
	require.NoError(t, ch.Confirm(false))
	publishConfirmed(t, ch, "events", "", amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte("m")})
	_, err := ch.Consume("other.q", "", false, false, false, false, nil)
	require.NoError(t, err)
	closed := conn.NotifyClose(make(chan *amqp091.Error, 1))
	guest, gch := b.mustDial("guest", "guest", "/")
	_, err = gch.QueueDeclare("survivor", true, false, false, false, nil)
	require.NoError(t, err)

	b.mustDo(http.StatusNoContent, "DELETE", "/api/vhosts/doomed", nil)
	requireClosedWith(t, closed, amqp091.ConnectionForced, "CONNECTION_FORCED - vhost 'doomed' is deleted")
	require.False(t, guest.IsClosed(), "connections to other vhosts stay open")
	_, err = b.dial("dora", "pw", "doomed")
	require.ErrorIs(t, err, amqp091.ErrVhost, "the vhost is gone")

	requireEmpty := func() {
		t.Helper()
		b.mustDo(http.StatusNotFound, "GET", "/api/queues/doomed/durable.q", nil)
		b.mustDo(http.StatusNotFound, "GET", "/api/exchanges/doomed/events", nil)
		conn, _ := b.mustDial("guest", "guest", "doomed")
		for _, q := range []string{"durable.q", "other.q"} {
			ch, err := conn.Channel()
			require.NoError(t, err)
			_, err = ch.QueueDeclarePassive(q, true, false, false, false, nil)
			requireAMQPError(t, err, amqp091.NotFound, "NOT_FOUND - no queue '"+q+"' in vhost 'doomed'")
		}
	}
	b.restart()
	b.mustDo(http.StatusNotFound, "GET", "/api/vhosts/doomed", nil)
	_, err = b.dial("dora", "pw", "doomed")
	require.ErrorIs(t, err, amqp091.ErrVhost, "the deleted vhost stays deleted after a restart")
	_, gch = b.mustDial("guest", "guest", "/")
	_, err = gch.QueueDeclarePassive("survivor", true, false, false, false, nil)
	require.NoError(t, err, "other vhosts' queues are kept")

	// The same name again is a new, empty vhost, now and after a restart.
	b.mustDo(http.StatusCreated, "PUT", "/api/vhosts/doomed", nil)
	requireEmpty()
	b.restart()
	requireEmpty()
}

// TestDeleteUserClosesItsConnections: deleting a user closes every
// connection it has open, on any vhost, with 320, and it cannot log in again;
// the deletion survives a restart.
func TestDeleteUserClosesItsConnections(t *testing.T) {
	b := newAdminBroker(t)
	b.addTenant("tenant-u", "ursula", "pw", ".*")
	b.mustDo(http.StatusCreated, "PUT", "/api/permissions/%2F/ursula", map[string]any{"configure": ".*", "write": ".*", "read": ".*"})
	var closes []chan *amqp091.Error
	for _, vh := range []string{"tenant-u", "/"} {
		conn, _ := b.mustDial("ursula", "pw", vh)
		closes = append(closes, conn.NotifyClose(make(chan *amqp091.Error, 1)))
	}
	guest, _ := b.mustDial("guest", "guest", "/")

	b.mustDo(http.StatusNoContent, "DELETE", "/api/users/ursula", nil)
	for _, c := range closes {
		requireClosedWith(t, c, amqp091.ConnectionForced, "CONNECTION_FORCED - user 'ursula' is deleted")
	}
	require.False(t, guest.IsClosed())
	_, err := b.dial("ursula", "pw", "tenant-u")
	require.ErrorIs(t, err, amqp091.ErrCredentials)
	b.restart()
	_, err = b.dial("ursula", "pw", "tenant-u")
	require.ErrorIs(t, err, amqp091.ErrCredentials)
	b.mustDo(http.StatusOK, "GET", "/api/vhosts/tenant-u", nil)
}

// TestDeleteVhostUnderLoad: clients keep logging in to a vhost and
// declaring durable queues in it while it is deleted and made again; once
// it is deleted for the last time no connection is left on it, and nothing
// declared in the races comes back in a vhost made under the same name, not
// even after a restart.
func TestDeleteVhostUnderLoad(t *testing.T) {
	b := newAdminBroker(t)
	b.addTenant("churn", "carl", "pw", ".*")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				conn, err := amqp091.DialConfig("amqp://carl:pw@"+b.srv.Addr+"/churn", amqp091.Config{Dial: amqp091.DefaultDial(timeout)})
				if err != nil {
					continue
				}
				if ch, err := conn.Channel(); err == nil {
					q := fmt.Sprintf("q-%d-%d", i, n)
					if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err == nil {
						_ = ch.Publish("", q, false, false, amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte("m")})
					}
				}
				_ = conn.Close()
			}
		}()
	}
	for range 5 {
		time.Sleep(20 * time.Millisecond)
		b.mustDo(http.StatusNoContent, "DELETE", "/api/vhosts/churn", nil)
		b.mustDo(http.StatusCreated, "PUT", "/api/vhosts/churn", nil)
		b.mustDo(http.StatusCreated, "PUT", "/api/permissions/churn/carl", map[string]any{"configure": ".*", "write": ".*", "read": ".*"})
	}
	time.Sleep(20 * time.Millisecond)
	b.mustDo(http.StatusNoContent, "DELETE", "/api/vhosts/churn", nil)
	require.Eventually(t, func() bool {
		for _, c := range b.srv.Connections() {
			if c.VHost == "churn" {
				return false
			}
		}
		return true
	}, timeout, 10*time.Millisecond, "no connection stays open on the deleted vhost")
	close(stop)
	wg.Wait()

	b.restart()
	b.mustDo(http.StatusNotFound, "GET", "/api/vhosts/churn", nil)
	b.mustDo(http.StatusCreated, "PUT", "/api/vhosts/churn", nil)
	b.restart()
	require.Empty(t, b.srv.VHost("churn").Queues(), "nothing declared during the deletions survives")
}
