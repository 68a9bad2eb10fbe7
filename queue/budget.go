package queue

// Charge adds n bytes (negative to release) to the budget's use, for
// holders of messages other than queues (delayed exchanges) that share it.
func (b *Budget) Charge(n int64) {
	if b != nil {
		b.used.Add(n)
	}
}

// Over reports whether the budget is spent; a nil budget never is.
func (b *Budget) Over() bool { return b.over() }
