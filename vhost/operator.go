package vhost

import (
	"maps"
	"slices"
	"strconv"

	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/storage"
)

// Operator policies are RabbitMQ's: policies an operator sets over the
// users' own, limited to a few numeric queue keys. Where a queue's
// arguments or its policy set a key too, the lower value wins, so an
// operator caps what users may ask for.

// operatorKeys are the keys RabbitMQ 3.10 accepts in an operator policy.
// max-in-memory-length and max-in-memory-bytes are quorum queues' and are
// kept without effect on classic queues, as in RabbitMQ.
var operatorKeys = map[string]bool{
	"expires": true, "message-ttl": true, "max-length": true, "max-length-bytes": true,
	"delivery-limit": true, "max-in-memory-length": true, "max-in-memory-bytes": true,
}

// SetOperatorPolicy adds or replaces an operator policy and applies it to
// the matching queues at once.
type SetOperatorPolicy Policy

// DeleteOperatorPolicy removes an operator policy.
type DeleteOperatorPolicy struct{ Name string }

func (v *VHost) checkOperatorPolicy(p Policy) (*policy, error) {
	for _, k := range slices.Sorted(maps.Keys(p.Definition)) {
		if !operatorKeys[k] {
			return nil, errorf(PreconditionFailed, "Validation failed\n\n[{<<\"%s\">>,%s}] are not recognised policy settings\n", k, erlTerm(p.Definition[k]))
		}
	}
	known := maps.Clone(p.Definition)
	delete(known, "max-in-memory-length")
	delete(known, "max-in-memory-bytes")
	if len(p.Definition) > 0 && len(known) == 0 {
		// Only quorum keys: valid, but checkPolicy would see no keys.
		known["max-length"] = int64(1)
	}
	cp := p
	cp.Definition = known
	pol, err := v.checkPolicy(cp)
	if err != nil {
		return nil, err
	}
	pol.Definition = p.Definition
	return pol, nil
}

// erlTerm writes a JSON value as RabbitMQ's validation messages show it.
func erlTerm(v any) string {
	if s, ok := v.(string); ok {
		return "<<\"" + s + "\">>"
	}
	n, ok := queue.IntArg(v)
	if !ok {
		return "..."
	}
	return strconv.FormatInt(n, 10)
}

func (op SetOperatorPolicy) apply(v *VHost, t *txn) (Result, error) {
	p, err := v.checkOperatorPolicy(Policy(op))
	if err != nil {
		return Result{}, err
	}
	v.mu.Lock()
	if v.deleted {
		v.mu.Unlock()
		return Result{}, v.gone()
	}
	old := v.opPolicies[p.Name]
	v.opPolicies[p.Name] = p
	t.onUndo(func() {
		if old == nil {
			delete(v.opPolicies, p.Name)
		} else {
			v.opPolicies[p.Name] = old
		}
	})
	v.storePolicyAs(&t.b, storage.KindOperatorPolicy, p.Policy)
	updates := v.policyUpdatesLocked()
	v.mu.Unlock()
	t.onSuccess(func(*Result) { applyUpdates(updates) })
	return Result{}, nil
}

func (op DeleteOperatorPolicy) apply(v *VHost, t *txn) (Result, error) {
	v.mu.Lock()
	old := v.opPolicies[op.Name]
	if old == nil {
		v.mu.Unlock()
		return Result{}, errorf(NotFound, "no operator policy '%s' in vhost '%s'", op.Name, v.Name)
	}
	delete(v.opPolicies, op.Name)
	t.onUndo(func() { v.opPolicies[op.Name] = old })
	if v.store != nil {
		t.b.DeleteDefinition(storage.KindOperatorPolicy, v.key(op.Name))
	}
	updates := v.policyUpdatesLocked()
	v.mu.Unlock()
	t.onSuccess(func(*Result) { applyUpdates(updates) })
	return Result{}, nil
}

// operatorPolicyForLocked is the operator policy that applies to a queue,
// or nil: the highest priority among those matching, as for policies.
func (v *VHost) operatorPolicyForLocked(name string) *policy {
	var best *policy
	for _, p := range v.opPolicies {
		if p.ApplyTo == "exchanges" || !p.re.MatchString(name) {
			continue
		}
		if best == nil || p.Priority > best.Priority || (p.Priority == best.Priority && p.Name < best.Name) {
			best = p
		}
	}
	return best
}

// mergeOperator caps the queue arguments args with an operator policy:
// each of its keys is taken where args lack it, and the lower value wins
// where both have it.
func mergeOperator(args map[string]any, op *policy) {
	for k, val := range queueArgs(op.Definition) {
		opv, ok := queue.IntArg(val)
		if !ok {
			continue
		}
		if cur, ok := args[k]; ok {
			if n, ok := queue.IntArg(cur); ok && n <= opv {
				continue
			}
		}
		args[k] = opv
	}
}

// OperatorPolicies returns the virtual host's operator policies, by name.
func (v *VHost) OperatorPolicies() []Policy {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make([]Policy, 0, len(v.opPolicies))
	for _, name := range slices.Sorted(maps.Keys(v.opPolicies)) {
		out = append(out, v.opPolicies[name].Policy)
	}
	return out
}

// OperatorPolicyFor names the operator policy that applies to a queue, or "".
func (v *VHost) OperatorPolicyFor(name string) string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if p := v.operatorPolicyForLocked(name); p != nil {
		return p.Name
	}
	return ""
}
