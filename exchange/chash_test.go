package exchange

import (
	"bufio"
	"encoding/base64"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testdata/phash2.txt was produced by OTP 25 (RabbitMQ 3.10.8's runtime):
// erlang:phash2/1 of routing keys and header terms, and the plugin's
// jump_consistent_hash over rand:seed_s(exs1024, {H, H, H}) for 3, 7 and
// 100 buckets, so these tests pin Warren's placement to RabbitMQ's.
func TestErlangVectors(t *testing.T) {
	f, err := os.Open("testdata/phash2.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	named := map[string]ErlTerm{
		"undefined": Atom("undefined"),
	}
	for name, v := range map[string]any{
		"longstr": "abc", "signedint": int32(5), "long": int64(123456789012), "neg": int64(-300000000),
		"negsmall": int32(-7), "bool": true, "double": 1.5, "void": nil, "ts": time.Unix(1700000000, 0),
	} {
		ft, ok := FieldTerm(v)
		if !ok {
			t.Fatalf("%s: not modelled", name)
		}
		named[name] = ft
	}
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		switch fs[0] {
		case "b":
			if len(fs) == 5 { // the empty binary's base64 is empty
				fs = append([]string{"b", ""}, fs[1:]...)
			}
			key, _ := base64.StdEncoding.DecodeString(fs[1])
			h, _ := ErlangPhash2(Binary(string(key)))
			if want, _ := strconv.Atoi(fs[2]); h != uint32(want) {
				t.Fatalf("phash2(%q) = %d, want %d", key, h, want)
			}
			for i, buckets := range []int{3, 7, 100} {
				if want, _ := strconv.Atoi(fs[3+i]); jumpBucket(h, buckets) != want {
					t.Fatalf("jump(%q, %d) = %d, want %d", key, buckets, jumpBucket(h, buckets), want)
				}
			}
		case "t":
			h, _ := ErlangPhash2(named[fs[1]])
			if want, _ := strconv.Atoi(fs[2]); h != uint32(want) {
				t.Errorf("phash2(%s) = %d, want %d", fs[1], h, want)
			}
		}
		n++
	}
	if n < 300 {
		t.Fatalf("read %d vectors", n)
	}
}

// TestConsistentHashRing: each binding owns weight buckets in binding
// order; a destination bound again (another key) gets none more; removing
// any of its bindings removes all its buckets, as the plugin does.
func TestConsistentHashRing(t *testing.T) {
	dest := func(n string) Destination { return Destination{Name: n} }
	e := New("chx", ConsistentHash, false, false, false, nil)
	for _, b := range []struct{ q, key string }{{"a", "1"}, {"b", "2"}, {"c", "1"}, {"b", "5"}} {
		_, err := e.Bind(dest(b.q), b.key, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	names := func() (out []string) {
		for _, d := range e.snap.Load().buckets {
			out = append(out, d.Name)
		}
		return out
	}
	if got := strings.Join(names(), ","); got != "a,b,b,c" {
		t.Fatalf("buckets %s", got)
	}
	e.Unbind(dest("b"), "5", nil)
	if got := strings.Join(names(), ","); got != "a,c" {
		t.Fatalf("after unbinding b: %s", got)
	}
	if e.BindingCount() != 3 {
		t.Fatalf("bindings %d", e.BindingCount())
	}
	for _, key := range []string{"x", "0", "-1", "1.5", ""} {
		if _, err := e.Bind(dest("d"), key, nil); err == nil {
			t.Errorf("weight %q accepted", key)
		}
	}
}

// TestRandomRoutesOneBinding: x-random picks one binding per message, and
// removing bindings keeps the rest reachable.
func TestRandomRoutesOneBinding(t *testing.T) {
	e := New("rx", Random, false, false, false, nil)
	for i := range 5 {
		_, _ = e.Bind(Destination{Name: strconv.Itoa(i)}, "", nil)
	}
	e.RemoveDestination(Destination{Name: "1"})
	e.RemoveDestination(Destination{Name: "3"})
	seen := map[string]int{}
	for range 600 {
		out := e.Route("ignored", nil, nil)
		if len(out) != 1 {
			t.Fatalf("routed to %v", out)
		}
		seen[out[0].Name]++
	}
	if len(seen) != 3 || seen["0"] == 0 || seen["2"] == 0 || seen["4"] == 0 {
		t.Fatalf("spread %v", seen)
	}
}
