package event

import (
	"net"
	"testing"

	"github.com/warrenmq/warren/amqp/wire"
)

// The expected strings are what RabbitMQ 3.10.8's event exchange sent for
// the same values (see the conformance test for the live comparison).
func TestTerms(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		want []any
	}{
		{"empty", nil, []any{}},
		{"signedint", map[string]any{"x-max-length": int32(10)}, []any{`{<<"x-max-length">>,signedint,10}`}},
		{"longstr", map[string]any{"x-queue-type": "classic"}, []any{`{<<"x-queue-type">>,longstr,<<"classic">>}`}},
		{"array", map[string]any{"x-list": []any{"a", int32(1)}}, []any{`{<<"x-list">>,array,[{longstr,<<"a">>},{signedint,1}]}`}},
		{"table sorted", map[string]any{"capabilities": wire.Table{"publisher_confirms": true, "basic.nack": true}},
			[]any{`{<<"capabilities">>,table,[{<<"basic.nack">>,bool,true},{<<"publisher_confirms">>,bool,true}]}`}},
		{"sorted keys", map[string]any{"b": int64(2), "a": int8(-1)}, []any{`{<<"a">>,byte,-1}`, `{<<"b">>,long,2}`}},
		{"void and double", map[string]any{"v": nil, "d": 1.5, "f": float32(2)}, []any{`{<<"d">>,double,1.5}`, `{<<"f">>,float,2.0}`, `{<<"v">>,void,undefined}`}},
		{"quote and bytes", map[string]any{"q": `a"b`, "u": "é"}, []any{`{<<"q">>,longstr,<<"a\"b">>}`, `{<<"u">>,longstr,<<195,169>>}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Terms(tt.in)
			if len(got) != len(tt.want) {
				t.Fatalf("Terms = %q, want %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("Terms[%d] = %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestErlangForms(t *testing.T) {
	tests := []struct{ got, want string }{
		{VhostMetadata("d", []string{"t1", "t2"}), `#{description => <<"d">>,tags => [t1,t2]}`},
		{VhostMetadata("", nil), `#{description => <<>>,tags => []}`},
		{Atom("Prod"), `'Prod'`},
		{IPTerm(net.ParseIP("127.0.0.1")), "{127,0,0,1}"},
		{IPTerm(net.ParseIP("::1")), "{0,0,0,0,0,0,0,1}"},
		{float(1e20), "1.0e20"},
		{float(0.25), "0.25"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %s, want %s", tt.got, tt.want)
		}
	}
}

func TestAuthenticationFailureErrorIsACharList(t *testing.T) {
	h := AuthenticationFailure(Peer{Name: "n"}, "guest", "PLAIN", "user 'guest' - invalid credentials")
	codes, ok := h["error"].([]any)
	if !ok || len(codes) != len("user 'guest' - invalid credentials") || codes[0] != int64('u') {
		t.Fatalf("error header = %#v", h["error"])
	}
}
