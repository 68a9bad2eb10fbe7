//go:build unix

package conformance

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// TestCrashLosesNoConfirmedMessage runs the real warren binary, publishes
// persistent messages with confirms from several connections, kills the
// process with SIGKILL at a random moment, restarts it on the same data
// directory and consumes everything: every confirmed message must be there
// (duplicates are allowed: delivery is at-least-once). Three rounds
// (WARREN_CRASH_ROUNDS=20 for issue 12's twenty), each
// killing at a different moment and keeping what earlier rounds left. It
// runs with the default memory budget and with one so small that nearly
// the whole backlog is paged out to disk, and recovered from there; and over
// a quorum queue (skipped while the broker refuses them).
func TestCrashLosesNoConfirmedMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the broker binary")
	}
	bin := filepath.Join(t.TempDir(), "warren")
	build := exec.Command("go", "build", "-o", bin, "../cmd/warren")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	for _, tc := range []struct {
		name      string
		args      []string
		queueArgs amqp091.Table
	}{
		{"default budget", nil, nil},
		{"paged", []string{"--storage.memory_budget", "65536"}, nil},
		{"quorum queue", nil, quorumArgs(nil)},
	} {
		t.Run(tc.name, func(t *testing.T) { crashRounds(t, bin, tc.args, tc.queueArgs) })
	}
}

func crashRounds(t *testing.T, bin string, args []string, queueArgs amqp091.Table) {
	dir := t.TempDir()
	if queueArgs["x-queue-type"] == "quorum" {
		proc, url := startBinary(t, bin, dir, args...)
		reason := quorumSupport(t, url)
		_ = proc.Process.Kill()
		_ = proc.Wait()
		if reason != "" {
			t.Skip(reason)
		}
	}

	confirmed := map[string]bool{}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("WARREN_CRASH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	for round := range rounds {
		proc, url := startBinary(t, bin, dir, args...)
		ch := dialChannel(t, url)
		_, err := ch.QueueDeclare("crash", true, false, false, false, queueArgs)
		require.NoError(t, err)

		var mu sync.Mutex
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for p := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				publishUntilKilled(url, fmt.Sprintf("r%d-p%d", round, p), stop, func(id string) {
					mu.Lock()
					confirmed[id] = true
					mu.Unlock()
				})
			}()
		}
		time.Sleep(time.Duration(100+rng.IntN(500)) * time.Millisecond)
		require.NoError(t, proc.Process.Signal(syscall.SIGKILL))
		_ = proc.Wait()
		close(stop)
		wg.Wait()
		mu.Lock()
		t.Logf("round %d: %d messages confirmed so far", round, len(confirmed))
		mu.Unlock()
	}

	proc, url := startBinary(t, bin, dir, args...)
	defer func() { _ = proc.Process.Kill(); _ = proc.Wait() }()
	ch := dialChannel(t, url)
	got := map[string]bool{}
	for _, body := range drain(t, ch, "crash") {
		got[body] = true
	}
	var missing []string
	for id := range confirmed {
		if !got[id] {
			missing = append(missing, id)
		}
	}
	require.Empty(t, missing, "confirmed messages lost (of %d confirmed, %d found)", len(confirmed), len(got))
	require.NotEmpty(t, confirmed, "the test confirmed nothing: it proves nothing")
}

var startedRE = regexp.MustCompile(`amqp=(127\.0\.0\.1:\d+)`)

// startBinary runs warren on a random port, with extra flags, and waits for
// its start line.
func startBinary(t *testing.T, bin, dir string, flags ...string) (*exec.Cmd, string) {
	t.Helper()
	args := append([]string{"--amqp.listen", "127.0.0.1:0", "--http.listen=", "--prometheus.listen=", "--storage.dir", dir, "--log.level", "info"}, flags...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	cmd.Stdout = os.Stdout
	require.NoError(t, cmd.Start())
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := startedRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		return cmd, "amqp://guest:guest@" + a + "/"
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("warren did not start")
		return nil, ""
	}
}

// publishUntilKilled publishes numbered persistent messages with confirms
// (up to 50 outstanding) until the broker dies, reporting each confirmed id.
func publishUntilKilled(url, prefix string, stop <-chan struct{}, confirmed func(id string)) {
	conn, err := amqp091.Dial(url)
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil || ch.Confirm(false) != nil {
		return
	}
	acks := ch.NotifyPublish(make(chan amqp091.Confirmation, 64))
	pending := map[uint64]string{}
	var seq uint64
	for {
		for len(pending) >= 50 {
			select {
			case c, ok := <-acks:
				if !ok {
					return
				}
				if c.Ack {
					confirmed(pending[c.DeliveryTag])
				}
				delete(pending, c.DeliveryTag)
			case <-stop:
				return
			}
		}
		seq++
		id := prefix + "-" + strconv.FormatUint(seq, 10)
		if ch.Publish("", "crash", false, false, amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte(id)}) != nil {
			return
		}
		pending[seq] = id
	}
}

// TestCrashDuringPagedDrain fills a queue with a confirmed persistent
// backlog under a memory budget so small that nearly all of it is paged to
// disk, then drains it with manual acks and kills the broker with SIGKILL in
// the middle of the drain (loads from disk, acks and their writes in
// flight). After a restart every confirmed message must be either one the
// consumer received before the kill or still in the queue.
func TestCrashDuringPagedDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the broker binary")
	}
	bin := filepath.Join(t.TempDir(), "warren")
	build := exec.Command("go", "build", "-o", bin, "../cmd/warren")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	dir := t.TempDir()
	args := []string{"--storage.memory_budget", "65536"}

	const total = 20000
	proc, url := startBinary(t, bin, dir, args...)
	ch := dialChannel(t, url)
	_, err = ch.QueueDeclare("drain", true, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.Confirm(false))
	acks := ch.NotifyPublish(make(chan amqp091.Confirmation, total))
	for i := range total {
		require.NoError(t, ch.Publish("", "drain", false, false, amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte(strconv.Itoa(i))}))
	}
	for range total {
		c := <-acks
		require.True(t, c.Ack, "publish %d nacked", c.DeliveryTag)
	}

	// Drain with manual acks, qos 100, and kill once a random part of the
	// backlog has been received.
	cch := dialChannel(t, url)
	require.NoError(t, cch.Qos(100, 0, false))
	deliveries, err := cch.Consume("drain", "", false, false, false, false, nil)
	require.NoError(t, err)
	received := map[string]bool{}
	killAt := 2000 + rand.IntN(total/2)
	for d := range deliveries {
		received[string(d.Body)] = true
		_ = d.Ack(false)
		if len(received) == killAt {
			require.NoError(t, proc.Process.Signal(syscall.SIGKILL))
			break
		}
	}
	_ = proc.Wait()
	t.Logf("killed after %d of %d deliveries", len(received), total)

	proc, url = startBinary(t, bin, dir, args...)
	defer func() { _ = proc.Process.Kill(); _ = proc.Wait() }()
	left := map[string]bool{}
	for _, body := range drain(t, dialChannel(t, url), "drain") {
		left[body] = true
	}
	var missing []int
	for i := range total {
		if id := strconv.Itoa(i); !received[id] && !left[id] {
			missing = append(missing, i)
		}
	}
	require.Empty(t, missing, "confirmed messages lost: neither received before the kill nor in the queue after it")
	require.Less(t, len(left), total, "the drain acked nothing: the test proves nothing")
}
