package vhost

import (
	"errors"
	"maps"
	"slices"

	"github.com/warrenmq/warren/event"
	"github.com/warrenmq/warren/queue"
)

// Delete empties the virtual host for good, as RabbitMQ does when a vhost is
// deleted: every queue (with its stored messages), exchange, binding and
// policy goes, each through the op that deletes it anywhere else, so their
// stored records and entries go too. From the moment Delete starts, ops that
// would create something fail with NotFound, so a declare that races with
// the deletion is either swept with the rest or refused. The caller stops
// new connections to the virtual host first and closes the open ones.
//
// Delete carries on past a failed deletion and returns every error; what
// could not be deleted stays stored, so the caller should keep the virtual
// host's own record then, to retry.
func (v *VHost) Delete() error { return v.DeleteAs(event.Internal) }

// DeleteAs is Delete on behalf of a user, whom its events name.
func (v *VHost) DeleteAs(actor string) error {
	v.mu.Lock()
	v.deleted = true
	queues := make([]queue.Interface, 0, len(v.queues))
	for _, name := range slices.Sorted(maps.Keys(v.queues)) {
		queues = append(queues, v.queues[name])
	}
	var exchanges []string
	for _, name := range slices.Sorted(maps.Keys(v.exchanges)) {
		// The default exchange has no bindings of its own to drop; the amq.*
		// ones go like any other, with bindings that may have been stored.
		if name != "" {
			exchanges = append(exchanges, name)
		}
	}
	policies := slices.Sorted(maps.Keys(v.policies))
	opPolicies := slices.Sorted(maps.Keys(v.opPolicies))
	v.mu.Unlock()

	var errs []error
	// Queues first: their bindings go with them, and dropping the policies
	// afterwards does not reconfigure queues about to be deleted.
	for _, q := range queues {
		if _, err := v.ApplyAs(DeleteQueue{Name: q.Declared().Name, Owner: q.Declared().Owner}, actor); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range exchanges {
		if _, err := v.ApplyAs(DeleteExchange{Name: name}, actor); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range policies {
		// A policy deleted meanwhile by someone else is not a failure.
		if _, err := v.ApplyAs(DeletePolicy{Name: name}, actor); err != nil && !isKind(err, NotFound) {
			errs = append(errs, err)
		}
	}
	for _, name := range opPolicies {
		if _, err := v.ApplyAs(DeleteOperatorPolicy{Name: name}, actor); err != nil && !isKind(err, NotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Deleted reports whether Delete has begun.
func (v *VHost) Deleted() bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.deleted
}

func isKind(err error, k Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}

// gone is the error of an op that would create something in a deleted
// virtual host.
func (v *VHost) gone() error {
	return errorf(NotFound, "vhost '%s' is deleted", v.Name)
}
