package vhost

// Op is one change to a virtual host's definitions. Every declare, delete,
// bind and unbind is a value of one of these types applied by VHost.Apply,
// the only place definitions change, so that a later cluster can replicate
// ops as log entries. Ops carry everything they need (a server-named queue's
// name is chosen before the op is made), so applying one is deterministic.
type Op interface {
	// apply changes memory, adds what durable state changed to t.b and
	// records in t how to undo the change (see Apply).
	apply(v *VHost, t *txn) (Result, error)
}

// Result is what applying an op produced.
type Result struct {
	// Messages is the message count of a deleted queue.
	Messages int
}

// DeclareExchange creates an exchange, or checks that an existing one is equivalent.
type DeclareExchange struct {
	Name       string
	Kind       string
	Durable    bool
	AutoDelete bool
	Internal   bool
	Args       map[string]any
}

// DeleteExchange removes an exchange and every binding to and from it.
type DeleteExchange struct {
	Name     string
	IfUnused bool
}

// DeclareQueue creates a queue, or checks that an existing one is equivalent.
type DeclareQueue struct {
	Name       string
	Durable    bool
	Exclusive  bool
	AutoDelete bool
	Args       map[string]any
	// Owner is the declaring connection; it owns the queue if Exclusive.
	Owner uint64
}

// DeleteQueue removes a queue and its bindings.
type DeleteQueue struct {
	Name     string
	IfUnused bool
	IfEmpty  bool
	// Owner is the connection asking; an exclusive queue refuses others.
	Owner uint64
}

// Bind adds a binding from exchange Source to a queue or, with ToExchange,
// to another exchange.
type Bind struct {
	Source      string
	Destination string
	ToExchange  bool
	Key         string
	Args        map[string]any
	Owner       uint64
}

// Unbind removes a binding; removing one that does not exist is not an error.
type Unbind Bind

func (op DeclareExchange) apply(v *VHost, t *txn) (Result, error) {
	return Result{}, v.declareExchange(op, t)
}
func (op DeleteExchange) apply(v *VHost, t *txn) (Result, error) {
	return Result{}, v.deleteExchange(op, t)
}
func (op DeclareQueue) apply(v *VHost, t *txn) (Result, error) {
	return Result{}, v.declareQueue(op, t)
}
func (op DeleteQueue) apply(v *VHost, t *txn) (Result, error) {
	return Result{}, v.deleteQueue(op, t)
}
func (op Bind) apply(v *VHost, t *txn) (Result, error)   { return Result{}, v.bind(op, t) }
func (op Unbind) apply(v *VHost, t *txn) (Result, error) { return Result{}, v.unbind(op, t) }
