package storage

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const crashDirEnv = "WARREN_STORAGE_CRASH_DIR"

// TestHelperProcess is the child of TestCrashConsistency: it commits batches
// as fast as it can from several goroutines and prints each seq once its
// callback reported it on disk, until it is killed.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashConsistency")
	}
	s, err := Open(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	// Continue after what earlier (killed) runs stored.
	var next atomic.Uint64
	if err := s.Entries("q", func(seq uint64, _ []byte) error {
		next.Store(max(next.Load(), seq))
		return nil
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	var out sync.Mutex // one line per write, never interleaved
	body := make([]byte, 1024)
	for range 4 {
		go func() {
			for {
				seq := next.Add(1)
				id := s.NextMessageID()
				var b Batch
				b.PutMessage(id, body)
				b.PutEntry("q", seq, binary.BigEndian.AppendUint64(nil, id))
				// Churn that frees pages: publish to a scratch queue and ack an
				// older one, so the freelist is exercised too.
				b.PutEntry("scratch", seq, u64(0))
				if seq > 5 {
					b.DeleteEntry("scratch", seq-5)
				}
				done := make(chan struct{})
				s.Submit(&b, func(err error) {
					if err != nil {
						fmt.Fprintln(os.Stderr, err)
						os.Exit(4)
					}
					out.Lock()
					_, _ = os.Stdout.WriteString(strconv.FormatUint(seq, 10) + "\n")
					out.Unlock()
					close(done)
				})
				<-done
			}
		}()
	}
	select {} // until killed
}

func TestCrashConsistency(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	var confirmed []uint64
	for run := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())

		lines := make(chan uint64, 1<<16)
		readDone := make(chan struct{})
		go func() {
			defer close(readDone)
			r := bufio.NewReader(stdout)
			for {
				// Only whole lines count: a number cut short by the kill
				// would name a different seq.
				line, err := r.ReadString('\n')
				if err != nil {
					break
				}
				seq, err := strconv.ParseUint(line[:len(line)-1], 10, 64)
				if err == nil {
					lines <- seq
				}
			}
			close(lines)
		}()
		// Wait for the first confirm, then kill at a random moment.
		select {
		case seq, ok := <-lines:
			require.True(t, ok, "child exited before committing")
			confirmed = append(confirmed, seq)
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatal("child committed nothing")
		}
		time.Sleep(time.Duration(50+rand.IntN(400)) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		<-readDone
		n := 0
		for seq := range lines {
			confirmed = append(confirmed, seq)
			n++
		}
		_ = cmd.Wait()
		t.Logf("run %d: %d confirmed before the kill", run, n+1)

		// Every confirmed seq must be there, with its message.
		s, err := Open(dir, Options{})
		require.NoError(t, err)
		t.Logf("run %d: %d journal records replayed", run, s.Stats().Replayed)
		have := map[uint64]uint64{}
		require.NoError(t, s.Entries("q", func(seq uint64, v []byte) error {
			have[seq] = binary.BigEndian.Uint64(v)
			return nil
		}))
		for _, seq := range confirmed {
			id, ok := have[seq]
			if !assert.True(t, ok, "confirmed seq %d lost", seq) {
				continue
			}
			_, err := s.Message(id)
			assert.NoError(t, err, "message of seq %d", seq)
		}
		require.NoError(t, s.Close())
	}
}
