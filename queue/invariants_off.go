//go:build !invariants

package queue

// checkState is empty without the invariants build tag, and its methods
// compile to nothing.
type checkState struct{}

func (checkState) delivered(uint64) {}
func (checkState) settled(uint64)   {}
func (checkState) dropUnacked()     {}

// checkLocked checks the queue's counters in the invariants build
// (invariants_on.go); here it does nothing.
func (q *Queue) checkLocked() {}
