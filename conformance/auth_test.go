package conformance

// The users and texts below were checked against RabbitMQ 3.10.8 with users
// made by rabbitmqctl (set_permissions -p / reader "" "" ".*"); the tests
// themselves need Warren's configuration and skip against an external broker.

import (
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker"
)

// withUsers adds users to the default configuration (which keeps guest).
func withUsers(users ...broker.User) func(*amqp.Config) {
	return func(c *amqp.Config) { c.Users = append(c.Users, users...) }
}

func userURL(b *testBroker, user, password string) string {
	return "amqp://" + user + ":" + password + "@" + b.Addr + "/"
}

func TestAuthPermissions(t *testing.T) {
	b := startBroker(t, withUsers(
		broker.User{Name: "reader", Password: "pw", Permissions: map[string]broker.Permission{"/": {Read: ".*"}}},
		broker.User{Name: "writer", Password: "pw", Permissions: map[string]broker.Permission{"/": {Write: ".*"}}},
	))
	b.skipIfExternal(t)

	_, admin := b.channel(t)
	existing := declareQueue(t, b, admin, "existing", nil)

	reader, err := amqp091.Dial(userURL(b, "reader", "pw"))
	require.NoError(t, err)
	defer reader.Close()
	writer, err := amqp091.Dial(userURL(b, "writer", "pw"))
	require.NoError(t, err)
	defer writer.Close()

	for _, tc := range []struct {
		name string
		conn *amqp091.Connection
		run  func(ch *amqp091.Channel) error
		text string // "" for success
	}{
		{"reader declares a queue", reader, func(ch *amqp091.Channel) error {
			_, err := ch.QueueDeclare("new-q", false, true, false, false, nil)
			return err
		}, "ACCESS_REFUSED - access to queue 'new-q' in vhost '/' refused for user 'reader'"},
		{"reader declares an exchange", reader, func(ch *amqp091.Channel) error {
			return ch.ExchangeDeclare("new-x", "direct", false, true, false, false, nil)
		}, "ACCESS_REFUSED - access to exchange 'new-x' in vhost '/' refused for user 'reader'"},
		{"reader binds", reader, func(ch *amqp091.Channel) error {
			return ch.QueueBind(existing, "k", "amq.direct", false, nil)
		}, "ACCESS_REFUSED - access to queue '" + existing + "' in vhost '/' refused for user 'reader'"},
		{"reader passive-declares", reader, func(ch *amqp091.Channel) error {
			_, err := ch.QueueDeclarePassive(existing, false, false, false, false, nil)
			return err
		}, ""},
		{"reader consumes", reader, func(ch *amqp091.Channel) error {
			_, err := ch.Consume(existing, "", false, false, false, false, nil)
			return err
		}, ""},
		{"writer consumes", writer, func(ch *amqp091.Channel) error {
			_, err := ch.Consume(existing, "", false, false, false, false, nil)
			return err
		}, "ACCESS_REFUSED - access to queue '" + existing + "' in vhost '/' refused for user 'writer'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := tc.conn.Channel()
			require.NoError(t, err)
			err = tc.run(ch)
			if tc.text == "" {
				require.NoError(t, err)
				return
			}
			requireAMQPError(t, err, amqp091.AccessRefused, tc.text)
			// The connection survives; these users cannot declare, so probe
			// it with a passive declare.
			other, err := tc.conn.Channel()
			require.NoError(t, err)
			_, err = other.QueueDeclarePassive(existing, false, false, false, false, nil)
			require.NoError(t, err)
		})
	}

	// A refused publish closes the channel asynchronously.
	ch, err := reader.Channel()
	require.NoError(t, err)
	closed := notifyClose(ch)
	publish(t, ch, "amq.direct", "k", "m")
	requireClosedWith(t, closed, amqp091.AccessRefused, "ACCESS_REFUSED - access to exchange 'amq.direct' in vhost '/' refused for user 'reader'")

	// The writer may publish (to a queue nobody consumes from: the reader's
	// consumer above still holds existing).
	target := declareQueue(t, b, admin, "target", nil)
	wch, err := writer.Channel()
	require.NoError(t, err)
	publish(t, wch, "", target, "m")
	requireQueueLen(t, admin, target, 1)
}

func TestAuthVhostRefused(t *testing.T) {
	b := startBroker(t, withUsers(broker.User{Name: "nobody", Password: "pw"}))
	b.skipIfExternal(t)

	r := dialRaw(t, b)
	r.login("nobody", "pw", func(tn *tune) { tn.Heartbeat = 0 })
	r.openVhost("/")
	code, text := r.expectConnectionClose()
	require.Equal(t, uint16(amqp091.NotAllowed), code, text)
	require.Equal(t, "NOT_ALLOWED - access to vhost '/' refused for user 'nobody'", text)
	r.requireEOF()
	requireConnUsable(t, b.dial(t))
}

func TestAuthLoginRefused(t *testing.T) {
	b := startBroker(t, withUsers(broker.User{Name: "u", Password: "right", Permissions: map[string]broker.Permission{"/": {Configure: ".*", Write: ".*", Read: ".*"}}}))
	b.skipIfExternal(t)

	conn, err := amqp091.Dial(userURL(b, "u", "right"))
	require.NoError(t, err)
	requireConnUsable(t, conn)
	require.NoError(t, conn.Close())

	for _, tc := range []struct{ user, password string }{{"u", "wrong"}, {"nosuchuser", "right"}, {"u", ""}} {
		t.Run(tc.user+"/"+tc.password, func(t *testing.T) {
			r := dialRaw(t, b)
			r.sendStartOK(tc.user, tc.password)
			code, text := r.expectConnectionClose()
			require.Equal(t, uint16(amqp091.AccessRefused), code, text)
			require.Equal(t, "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.", text)
			r.requireEOF()
		})
	}
}

// TestAuthMechanismsAndHashes: AMQPLAIN works as well as PLAIN, and a user
// configured with RabbitMQ's salted SHA-256 password_hash logs in with the
// password and not with anything else.
func TestAuthMechanismsAndHashes(t *testing.T) {
	b := startBroker(t, withUsers(broker.User{
		Name:         "hashed",
		PasswordHash: broker.HashPassword([4]byte{1, 2, 3, 4}, "s3cret"),
		Permissions:  map[string]broker.Permission{"/": {Configure: ".*", Write: ".*", Read: ".*"}},
	}))
	b.skipIfExternal(t)
	for _, tc := range []struct {
		name string
		auth amqp091.Authentication
		ok   bool
	}{
		{"PLAIN guest", &amqp091.PlainAuth{Username: "guest", Password: "guest"}, true},
		{"AMQPLAIN guest", &amqp091.AMQPlainAuth{Username: "guest", Password: "guest"}, true},
		{"PLAIN hashed", &amqp091.PlainAuth{Username: "hashed", Password: "s3cret"}, true},
		{"AMQPLAIN hashed", &amqp091.AMQPlainAuth{Username: "hashed", Password: "s3cret"}, true},
		{"PLAIN hashed, wrong password", &amqp091.PlainAuth{Username: "hashed", Password: "guess"}, false},
		{"AMQPLAIN wrong password", &amqp091.AMQPlainAuth{Username: "guest", Password: "nope"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := amqp091.DialConfig("amqp://"+b.Addr+"/", amqp091.Config{SASL: []amqp091.Authentication{tc.auth}})
			if !tc.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			defer conn.Close()
			requireConnUsable(t, conn)
		})
	}
}
