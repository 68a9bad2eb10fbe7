package broker

import "sync"

// group is the broker's background goroutines: queue loads, dropping a
// deleted queue's entries, dropping orphans at start, the alarm watcher,
// the event exchange's publisher, the management sampler. Every one starts through Go, which refuses once
// stopping began; stop waits for all of them, so the store is closed under
// none (nats' startGoRoutine does the same).
type group struct {
	mu       sync.Mutex // guards stopping against wg.Add racing wg.Wait
	stopping bool
	wg       sync.WaitGroup
	done     chan struct{} // closed when stopping begins
}

func newGroup() *group { return &group{done: make(chan struct{})} }

// Go runs f in a goroutine of the group; it reports false, and runs
// nothing, once the group is stopping.
func (g *group) Go(f func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopping {
		return false
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
	return true
}

// stop tells long-running goroutines to return (done) and waits for every
// goroutine of the group.
func (g *group) stop() {
	g.mu.Lock()
	if !g.stopping {
		g.stopping = true
		close(g.done)
	}
	g.mu.Unlock()
	g.wg.Wait()
}

// Go runs f as one of the broker's background goroutines, which Close
// waits for before it closes the store. It reports false, and runs nothing,
// once Close has begun. A long-running f returns when Stopping is closed.
func (b *Broker) Go(f func()) bool { return b.group.Go(f) }

// Stopping is closed when Close begins: background loops return then.
func (b *Broker) Stopping() <-chan struct{} { return b.group.done }
