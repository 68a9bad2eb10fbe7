package storage

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const journalDirEnv = "WARREN_STORAGE_JOURNAL_DIR"

// TestHelperJournalOnly is the child of TestJournalReplay: its applier never
// runs, so what it commits is only in the journal. It stores 1000 messages
// with an entry each, acks every third, declares a definition, prints
// "done" once the journal has all of it and waits to be killed.
func TestHelperJournalOnly(t *testing.T) {
	dir := os.Getenv(journalDirEnv)
	if dir == "" {
		t.Skip("helper process for TestJournalReplay")
	}
	s, err := Open(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	block := func() { select {} }
	s.ap.hold.Store(&block)
	errs := make(chan error, 2000)
	var lastID uint64
	for i := uint64(1); i <= 1000; i++ {
		id := s.NextMessageID()
		lastID = id
		var b Batch
		b.PutMessage(id, []byte("body-"+strconv.FormatUint(i, 10)))
		b.PutEntry("q", i, binary.BigEndian.AppendUint64(nil, id))
		s.Submit(&b, func(err error) { errs <- err })
		if i%3 == 0 {
			var d Batch
			d.DeleteEntry("q", i)
			s.SubmitBackground(&d, func(err error) { errs <- err })
		}
	}
	var d Batch
	d.PutDefinition(KindQueue, "k", []byte("v"))
	s.Submit(&d, func(err error) { errs <- err })
	for range 1000 + 333 + 1 {
		if err := <-errs; err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(4)
		}
	}
	fmt.Printf("done %d\n", lastID)
	select {}
}

// TestJournalReplay: writes confirmed from the journal alone, never applied
// to the file, come back after a kill -9, acks included; message ids are
// not handed out again; and the replayed records are not replayed twice.
func TestJournalReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperJournalOnly$")
	cmd.Env = append(os.Environ(), journalDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(stdout).ReadString('\n')
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	require.NoError(t, err, "the child did not finish")
	var lastID uint64
	_, err = fmt.Sscanf(line, "done %d", &lastID)
	require.NoError(t, err)

	s, err := Open(dir, Options{})
	require.NoError(t, err)
	assert.NotZero(t, s.Stats().Replayed, "the child's writes were only in the journal")
	check := func(s *Store) {
		t.Helper()
		var n uint64
		require.NoError(t, s.Entries("q", func(seq uint64, v []byte) error {
			n++
			assert.NotZero(t, seq%3, "acked entry %d is back", seq)
			body, err := s.Message(binary.BigEndian.Uint64(v))
			require.NoError(t, err)
			assert.Equal(t, "body-"+strconv.FormatUint(seq, 10), string(body))
			return nil
		}))
		assert.Equal(t, uint64(1000-333), n)
		assert.Equal(t, map[string]string{"k": "v"}, definitions(t, s, KindQueue))
		assert.Greater(t, s.NextMessageID(), lastID, "ids stored in the journal are not handed out again")
	}
	check(s)
	require.NoError(t, s.Close())

	s, err = Open(dir, Options{})
	require.NoError(t, err)
	assert.Zero(t, s.Stats().Replayed, "replayed records were checkpointed")
	check(s)
	require.NoError(t, s.Close())
}

// TestBatchTooLargeForJournal: a batch larger than half a journal segment
// goes straight to bbolt, after everything journaled before it and before
// anything after it, and all of it survives a reopen.
func TestBatchTooLargeForJournal(t *testing.T) {
	dir := t.TempDir()
	opts := Options{JournalSegmentSize: 64 << 10}
	s, err := Open(dir, opts)
	require.NoError(t, err)
	errs := make(chan error, 100)
	put := func(seq uint64, body []byte) {
		var b Batch
		b.PutMessage(seq, body)
		b.PutEntry("q", seq, binary.BigEndian.AppendUint64(nil, seq))
		s.Submit(&b, func(err error) { errs <- err })
	}
	large := make([]byte, 40<<10)
	for i := range large {
		large[i] = byte(i)
	}
	for seq := uint64(1); seq <= 30; seq++ {
		if seq == 10 || seq == 20 {
			put(seq, large)
		} else {
			put(seq, []byte("small-"+strconv.FormatUint(seq, 10)))
		}
		if seq == 15 {
			var d Batch
			d.DeleteEntry("q", 10) // journaled after the direct write of 10
			s.Submit(&d, func(err error) { errs <- err })
		}
	}
	for range 31 {
		require.NoError(t, <-errs)
	}
	require.NoError(t, s.Close())

	s, err = Open(dir, opts)
	require.NoError(t, err)
	defer s.Close()
	seqs, _ := entries(t, s, "q")
	require.Len(t, seqs, 29)
	for _, seq := range seqs {
		require.NotEqual(t, uint64(10), seq)
		body, err := s.Message(seq)
		require.NoError(t, err)
		if seq == 20 {
			require.Equal(t, large, body)
		} else {
			require.Equal(t, "small-"+strconv.FormatUint(seq, 10), string(body))
		}
	}
	_, err = s.Message(10)
	require.ErrorIs(t, err, ErrNotFound, "the entry's delete after the direct write deleted the message")
}
