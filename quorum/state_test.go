package quorum

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var c1, c2 = ConsumerID{Pid: 1, Tag: "c1"}, ConsumerID{Pid: 2, Tag: "c2"}

func enq(body string) Command {
	return Command{Type: CmdEnqueue, Body: []byte(body), Size: uint32(len(body))}
}
func checkout(c ConsumerID, prefetch uint32) Command {
	return Command{Type: CmdCheckout, Consumer: c, Prefetch: prefetch}
}
func settle(c ConsumerID, ids ...uint64) Command {
	return Command{Type: CmdSettle, Consumer: c, MsgIDs: ids}
}
func ret(c ConsumerID, ids ...uint64) Command {
	return Command{Type: CmdReturn, Consumer: c, MsgIDs: ids}
}
func discard(c ConsumerID, ids ...uint64) Command {
	return Command{Type: CmdDiscard, Consumer: c, MsgIDs: ids}
}

// render shows effects and results in a compact, comparable form.
func render(res Result, effs []Effect) string {
	var out []string
	if res.Rejected {
		out = append(out, "rejected")
	}
	if res.Found {
		out = append(out, fmt.Sprintf("got %s dc%d left %d", res.Body, res.DeliveryCount, res.Count))
	} else if res.Count > 0 {
		out = append(out, fmt.Sprintf("purged %d", res.Count))
	}
	if res.Err != nil {
		out = append(out, "err "+res.Err.Error())
	}
	for _, e := range effs {
		switch e.Type {
		case EffDeliver:
			out = append(out, fmt.Sprintf("deliver %s#%d %s dc%d", e.Consumer.Tag, e.MsgID, e.Body, e.DeliveryCount))
		case EffDeadLetter:
			out = append(out, fmt.Sprintf("dlx %s %s", e.Reason, e.Body))
		}
	}
	return strings.Join(out, "; ")
}

func TestStateMachine(t *testing.T) {
	type step struct {
		cmd  Command
		want string // rendered result and effects
	}
	tests := []struct {
		name      string
		cfg       Config
		steps     []step
		wantReady int
		wantLive  int
	}{
		{
			name: "fifo with prefetch",
			steps: []step{
				{enq("a"), ""}, {enq("b"), ""},
				{checkout(c1, 1), "deliver c1#0 a dc0"},
				{settle(c1, 0), "deliver c1#1 b dc0"},
				{settle(c1, 1), ""},
			},
		},
		{
			name: "round robin",
			steps: []step{
				{checkout(c1, 0), ""}, {checkout(c2, 0), ""},
				{enq("a"), "deliver c1#0 a dc0"}, {enq("b"), "deliver c2#0 b dc0"}, {enq("c"), "deliver c1#1 c dc0"},
			},
			wantLive: 3,
		},
		{
			name: "return goes to the back and counts",
			steps: []step{
				{enq("a"), ""}, {enq("b"), ""},
				{checkout(c1, 1), "deliver c1#0 a dc0"},
				{ret(c1, 0), "deliver c1#1 b dc0"},
				{ret(c1, 1), "deliver c1#2 a dc1"},
			},
			wantReady: 1, wantLive: 2,
		},
		{
			name: "delivery limit dead-letters",
			cfg:  Config{DeliveryLimit: 1},
			steps: []step{
				{enq("a"), ""},
				{checkout(c1, 0), "deliver c1#0 a dc0"},
				{ret(c1, 0), "deliver c1#1 a dc1"},
				{ret(c1, 1), "dlx delivery_limit a"},
			},
		},
		{
			name: "discard dead-letters as rejected",
			steps: []step{
				{enq("a"), ""}, {checkout(c1, 0), "deliver c1#0 a dc0"},
				{discard(c1, 0), "dlx rejected a"},
				{settle(c1, 0), ""}, // already gone: ignored
			},
		},
		{
			name: "drop-head",
			cfg:  Config{MaxLength: 2},
			steps: []step{
				{enq("a"), ""}, {enq("b"), ""}, {enq("c"), "dlx maxlen a"},
				{checkout(c1, 0), "deliver c1#0 b dc0; deliver c1#1 c dc0"},
			},
			wantLive: 2,
		},
		{
			name: "drop-head by bytes",
			cfg:  Config{MaxBytes: 5},
			steps: []step{
				{enq("aaa"), ""}, {enq("bb"), ""}, {enq("c"), "dlx maxlen aaa"},
			},
			wantReady: 2, wantLive: 2,
		},
		{
			// As RabbitMQ 3.10: the publish that goes over the limit is
			// accepted, the next ones are refused.
			name: "reject-publish",
			cfg:  Config{MaxLength: 2, Overflow: RejectPublish},
			steps: []step{
				{enq("a"), ""}, {enq("b"), ""}, {enq("c"), ""}, {enq("x"), "rejected"},
				{checkout(c1, 1), "deliver c1#0 a dc0"},
				{enq("d"), ""}, // two ready: no longer over
			},
			wantReady: 3, wantLive: 4,
		},
		{
			name: "purge leaves checked-out messages",
			steps: []step{
				{enq("a"), ""}, {enq("b"), ""}, {enq("c"), ""},
				{checkout(c1, 1), "deliver c1#0 a dc0"},
				{Command{Type: CmdPurge}, "purged 2"},
			},
			wantLive: 1,
		},
		{
			name: "consumer down returns its messages in order",
			steps: []step{
				{enq("a"), ""}, {enq("b"), ""},
				{checkout(c1, 0), "deliver c1#0 a dc0; deliver c1#1 b dc0"},
				{checkout(c2, 0), ""},
				{Command{Type: CmdDown, Pid: 1}, "deliver c2#0 a dc1; deliver c2#1 b dc1"},
				{settle(c1, 0), "err " + ErrUnknownConsumer.Error()},
			},
			wantLive: 2,
		},
		{
			name: "cancel stops deliveries, acks still count",
			steps: []step{
				{checkout(c1, 0), ""}, {enq("a"), "deliver c1#0 a dc0"},
				{Command{Type: CmdCancel, Consumer: c1}, ""},
				{enq("b"), ""},
				{settle(c1, 0), ""},
				{settle(c1, 0), "err " + ErrUnknownConsumer.Error()}, // gone once drained
			},
			wantReady: 1, wantLive: 1,
		},
		{
			name: "dequeue settled, and unsettled to a one-shot consumer",
			steps: []step{
				{enq("a"), ""}, {enq("b"), ""},
				{Command{Type: CmdDequeue, Consumer: c1, Settled: true}, "got a dc0 left 1"},
				{Command{Type: CmdDequeue, Consumer: c2}, "got b dc0 left 0"},
				{Command{Type: CmdDequeue, Consumer: ConsumerID{Pid: 3}}, ""}, // empty
				{ret(c2, 0), ""},
				{Command{Type: CmdDequeue, Consumer: ConsumerID{Pid: 4}, Settled: true}, "got b dc1 left 0"},
			},
		},
		{
			name: "the higher priority consumer with room first",
			steps: []step{
				{checkout(c1, 1), ""},
				{Command{Type: CmdCheckout, Consumer: c2, Prefetch: 1, Priority: 5}, ""},
				{enq("a"), "deliver c2#0 a dc0"}, {enq("b"), "deliver c1#0 b dc0"}, {enq("c"), ""},
				{settle(c1, 0), "deliver c1#1 c dc0"},
			},
			wantLive: 2,
		},
		{
			name: "single active consumer",
			cfg:  Config{SingleActive: true},
			steps: []step{
				{checkout(c1, 0), ""}, {checkout(c2, 0), ""},
				{enq("a"), "deliver c1#0 a dc0"}, {enq("b"), "deliver c1#1 b dc0"},
				{Command{Type: CmdDown, Pid: 1}, "deliver c2#0 a dc1; deliver c2#1 b dc1"},
			},
			wantLive: 2,
		},
		{
			name: "TTL expires at the head, by the commands' clock",
			cfg:  Config{HasTTL: true, MessageTTL: 100},
			steps: []step{
				{Command{Type: CmdEnqueue, Body: []byte("a"), Time: 1000}, ""},
				{Command{Type: CmdEnqueue, Body: []byte("b"), Time: 1010, TTL: 5, HasTTL: true}, ""},
				{Command{Type: CmdExpire, Time: 1050}, ""}, // b is due, but a is ahead of it
				{Command{Type: CmdExpire, Time: 1100}, "dlx expired a; dlx expired b"},
			},
		},
		{
			name:      "reject-publish with a limit of 0",
			cfg:       Config{MaxLength: -1, Overflow: RejectPublish},
			steps:     []step{{enq("a"), ""}, {enq("b"), "rejected"}},
			wantReady: 1, wantLive: 1,
		},
		{
			name:  "duplicate consumer tag",
			steps: []step{{checkout(c1, 0), ""}, {checkout(c1, 0), "err " + ErrConsumerExists.Error()}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(tt.cfg)
			for i, st := range tt.steps {
				st := st
				// Through the codec, as the log carries them.
				cmd, err := DecodeCommand(st.cmd.AppendTo(nil))
				require.NoError(t, err)
				res, effs := s.Apply(uint64(i+2), &cmd, nil)
				require.Equal(t, st.want, render(res, effs), "step %d (%s)", i, cmd.Type)
			}
			require.Equal(t, tt.wantReady, s.Ready(), "ready")
			require.Equal(t, tt.wantLive, s.Live(), "live")
			// A snapshot restores to the same state.
			r, err := Restore(s.Snapshot())
			require.NoError(t, err)
			require.Equal(t, s.Snapshot(), r.Snapshot())
		})
	}
}

func TestDecodeCommandErrors(t *testing.T) {
	sc := settle(c1, 1, 2)
	good := sc.AppendTo(nil)
	for _, b := range [][]byte{nil, {0}, {99}, good[:len(good)-1], append(good, 0)} {
		_, err := DecodeCommand(b)
		require.Error(t, err, "%x", b)
	}
}

// workload drives a state with a random but seeded mix of commands, acting
// on the deliveries it sees as a client would.
type workload struct {
	rnd     *rand.Rand
	held    map[ConsumerID][]uint64
	cmds    []Command
	cons    []ConsumerID
	nextPid uint64
}

func (w *workload) next() Command {
	switch r := w.rnd.Intn(100); {
	case r < 45 || len(w.cons) == 0 && r < 90:
		return enq(fmt.Sprintf("m%d", len(w.cmds)))
	case r < 50 || len(w.cons) == 0:
		w.nextPid++
		c := ConsumerID{Pid: w.nextPid, Tag: "t"}
		w.cons = append(w.cons, c)
		return checkout(c, uint32(w.rnd.Intn(5)))
	case r < 52:
		i := w.rnd.Intn(len(w.cons))
		c := w.cons[i]
		w.cons = append(w.cons[:i], w.cons[i+1:]...)
		delete(w.held, c)
		return Command{Type: CmdDown, Pid: c.Pid}
	case r < 53:
		return Command{Type: CmdPurge}
	default:
		c := w.cons[w.rnd.Intn(len(w.cons))]
		ids := w.held[c]
		if len(ids) == 0 {
			return enq("x")
		}
		k := 1 + w.rnd.Intn(len(ids))
		take := append([]uint64(nil), ids[:k]...)
		w.held[c] = ids[k:]
		typ := CmdSettle
		if r > 90 {
			typ = CmdReturn
		} else if r > 87 {
			typ = CmdDiscard
		}
		return Command{Type: typ, Consumer: c, MsgIDs: take}
	}
}

func (w *workload) saw(effs []Effect) {
	for _, e := range effs {
		if e.Type == EffDeliver {
			w.held[e.Consumer] = append(w.held[e.Consumer], e.MsgID)
		}
	}
}

// TestSnapshotReplayEquivalence checks rabbit_fifo's release rule: a
// release snapshot restored and replayed with the commands after it gives
// the same state, with every live message's body back. The node batches
// commands into raft entries, so several commands share an index: a
// snapshot at an index must hold every command of that entry (the seeds
// from 4 on batch; the simulation found a release inside an entry).
func TestSnapshotReplayEquivalence(t *testing.T) {
	for seed := int64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			w := &workload{rnd: rand.New(rand.NewSource(seed)), held: map[ConsumerID][]uint64{}}
			maxBatch := 1
			if seed > 3 {
				maxBatch = 8
			}
			var indexes []uint64 // each command's raft index
			index, left := uint64(1), 0
			s := New(Config{DeliveryLimit: 3, MaxLength: 500})
			type rel struct {
				index uint64
				data  []byte
			}
			var rels []rel
			var effs []Effect
			for i := 0; i < 20000; i++ {
				cmd := w.next()
				w.cmds = append(w.cmds, cmd)
				if left == 0 {
					index++
					left = 1 + w.rnd.Intn(maxBatch)
				}
				left--
				indexes = append(indexes, index)
				_, effs = s.Apply(index, &cmd, effs[:0])
				w.saw(effs)
				for _, e := range effs {
					if e.Type == EffRelease {
						rels = append(rels, rel{e.Index, e.Snapshot})
					}
				}
			}
			require.NotEmpty(t, rels, "the workload drains now and then")
			for _, r := range rels[max(0, len(rels)-3):] {
				restored, err := Restore(r.data)
				require.NoError(t, err)
				for i := range w.cmds {
					if indexes[i] > r.index {
						restored.Apply(indexes[i], &w.cmds[i], nil)
					}
				}
				require.Equal(t, s.Snapshot()[1:], restored.Snapshot()[1:])
				restored.messages.each(func(m *message) { require.NotNil(t, m.body, "message %d", m.index) })
				restored.returns.each(func(m *message) { require.NotNil(t, m.body, "message %d", m.index) })
				for _, c := range restored.order {
					for _, m := range c.checked {
						require.NotNil(t, m.body, "message %d", m.index)
					}
				}
			}
		})
	}
}
