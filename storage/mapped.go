package storage

import bolt "go.etcd.io/bbolt"

// bbolt reads through a shared read-only mmap of the file, so every page a
// scan touches counts in the broker's RSS until the kernel needs the memory:
// draining a 10 GB backlog would show 10 GB of RSS that is really page
// cache. The store counts the bytes reads and writes go through (touched)
// and every releaseEvery bytes lets go of the mapping's resident pages.
// They stay in the page cache and fault back in if read again.

// releaseEvery is how many bytes are read through the map between releases
// of its resident pages.
const releaseEvery = 64 << 20

// writePageCost is what touch counts per write: a write reads the pages it
// changes through the map; a page per op is generous.
const writePageCost = 512

// touch counts n bytes read through the map in the read transaction tx,
// and releases the mapped pages once enough have been.
func (s *Store) touch(tx *bolt.Tx, n int64) {
	if s.touched.Add(n) > releaseEvery {
		s.touched.Store(0)
		s.releaseMapped(tx)
	}
}

// touchWrites is touch for the committer, after a write transaction of ops
// writes has ended: it releases the pages in a read transaction of its own.
func (s *Store) touchWrites(ops int) {
	if s.touched.Add(int64(ops)*writePageCost) > releaseEvery {
		s.touched.Store(0)
		_ = s.view(func(tx *bolt.Tx) error { s.releaseMapped(tx); return nil })
	}
}

// releaseMapped unmaps the file pages that reads have made resident in the
// process. It runs inside a transaction (tx), during which bbolt cannot
// remap the file, so the range is the live mapping.
func (s *Store) releaseMapped(tx *bolt.Tx) {
	unmapResident(s.db.Info().Data, uintptr(tx.Size()))
}

// ReleaseMapped hands back the file pages reads have made resident, for a
// caller that has just walked much of the file (a recovery scan).
func (s *Store) ReleaseMapped() {
	s.touched.Store(0)
	_ = s.view(func(tx *bolt.Tx) error { s.releaseMapped(tx); return nil })
}
