package vhost

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"time"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/event"
	"github.com/warrenmq/warren/exchange"
	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/storage"
)

// Policy is a RabbitMQ policy: queues and exchanges whose names match
// Pattern take the keys of Definition that their own arguments do not set;
// when several policies match, the highest Priority wins.
type Policy struct {
	Name       string
	Pattern    string
	ApplyTo    string // "all" (default), "queues" or "exchanges"
	Priority   int
	Definition map[string]any
}

// SetPolicy adds or replaces a policy and applies it to the matching queues
// and exchanges at once.
type SetPolicy Policy

// DeletePolicy removes a policy; the queues it applied to fall back to their
// own arguments (or to another matching policy).
type DeletePolicy struct{ Name string }

// policyKeys maps a policy definition key to the queue argument it stands
// for; exchange keys map to "".
var policyKeys = map[string]string{
	"dead-letter-exchange":    "x-dead-letter-exchange",
	"dead-letter-routing-key": "x-dead-letter-routing-key",
	"message-ttl":             "x-message-ttl",
	"expires":                 "x-expires",
	"max-length":              "x-max-length",
	"max-length-bytes":        "x-max-length-bytes",
	"overflow":                "x-overflow",
	"max-priority":            "x-max-priority",
	"delivery-limit":          "x-delivery-limit",
	"consumer-timeout":        "x-consumer-timeout",
	"queue-mode":              "x-queue-mode",
	"alternate-exchange":      "",
	// Quorum queues' keys; max-in-memory-* and the leader locator are
	// checked, and accepted without effect, as the arguments are.
	"dead-letter-strategy": "x-dead-letter-strategy",
	"max-in-memory-length": "x-max-in-memory-length",
	"max-in-memory-bytes":  "x-max-in-memory-bytes",
	"queue-leader-locator": "x-queue-leader-locator",
	// Keys for queue types and features Warren does not have: accepted,
	// and they keep a policy off quorum queues (quorumUnsupportedKeys).
	"queue-version":                 "",
	"queue-master-locator":          "",
	"ha-mode":                       "",
	"ha-params":                     "",
	"ha-sync-mode":                  "",
	"ha-sync-batch-size":            "",
	"ha-promote-on-shutdown":        "",
	"ha-promote-on-failure":         "",
	"max-age":                       "",
	"stream-max-segment-size-bytes": "",
}

// quorumUnsupportedKeys are the policy keys that make a policy not apply to
// a quorum queue at all (rabbit_quorum_queue's unsupported_policies).
var quorumUnsupportedKeys = []string{
	"ha-mode", "ha-params", "ha-sync-batch-size", "ha-sync-mode", "ha-promote-on-shutdown",
	"ha-promote-on-failure", "queue-master-locator", "max-age", "stream-max-segment-size-bytes", "queue-mode",
}

// policy is a Policy with its pattern compiled.
type policy struct {
	Policy
	re *regexp.Regexp
}

func (op SetPolicy) apply(v *VHost, t *txn) (Result, error) {
	p, err := v.checkPolicy(Policy(op))
	if err != nil {
		return Result{}, err
	}
	v.mu.Lock()
	if v.deleted {
		v.mu.Unlock()
		return Result{}, v.gone()
	}
	old := v.policies[p.Name]
	v.policies[p.Name] = p
	t.onUndo(func() { v.restorePolicyLocked(p.Name, old) })
	v.storePolicy(&t.b, p.Policy)
	updates := v.policyUpdatesLocked()
	v.mu.Unlock()
	t.onSuccess(func(*Result) { applyUpdates(updates) })
	pol := p.Policy
	v.emit(t, "policy.set", func() wire.Table {
		return event.PolicySet(v.Name, pol.Name, pol.Pattern, pol.ApplyTo, pol.Priority, pol.Definition, t.actor)
	})
	return Result{}, nil
}

func (op DeletePolicy) apply(v *VHost, t *txn) (Result, error) {
	v.mu.Lock()
	if v.policies[op.Name] == nil {
		v.mu.Unlock()
		return Result{}, errorf(NotFound, "no policy '%s' in vhost '%s'", op.Name, v.Name)
	}
	old := v.policies[op.Name]
	delete(v.policies, op.Name)
	t.onUndo(func() { v.restorePolicyLocked(op.Name, old) })
	if v.store != nil {
		t.b.DeleteDefinition(storage.KindPolicy, v.key(op.Name))
	}
	updates := v.policyUpdatesLocked()
	v.mu.Unlock()
	t.onSuccess(func(*Result) { applyUpdates(updates) })
	v.emit(t, "policy.cleared", func() wire.Table { return event.PolicyCleared(v.Name, op.Name, t.actor) })
	return Result{}, nil
}

// restorePolicyLocked puts back the policy an op replaced or deleted (none
// if old is nil) when its commit failed.
func (v *VHost) restorePolicyLocked(name string, old *policy) {
	if old == nil {
		delete(v.policies, name)
	} else {
		v.policies[name] = old
	}
}

// checkPolicy validates a policy the way RabbitMQ's policy validator does:
// a pattern that compiles, a known apply-to, and known keys with valid values.
func (v *VHost) checkPolicy(p Policy) (*policy, error) {
	if p.Name == "" {
		return nil, errorf(PreconditionFailed, "policy name must not be empty")
	}
	if p.ApplyTo == "" {
		p.ApplyTo = "all"
	}
	if p.ApplyTo != "all" && p.ApplyTo != "queues" && p.ApplyTo != "exchanges" {
		return nil, errorf(PreconditionFailed, "Validation failed\n\n'%s' is not a valid apply-to value", p.ApplyTo)
	}
	re, err := regexp.Compile(p.Pattern)
	if err != nil {
		return nil, errorf(PreconditionFailed, "Validation failed\n\n%s is not a valid regular expression", p.Pattern)
	}
	if len(p.Definition) == 0 {
		return nil, errorf(PreconditionFailed, "Validation failed\n\nno policy keys given")
	}
	for _, k := range slices.Sorted(maps.Keys(p.Definition)) {
		if _, ok := policyKeys[k]; !ok {
			return nil, errorf(PreconditionFailed, "Validation failed\n\n[{<<\"%s\">>,...}] are not recognised policy settings", k)
		}
	}
	if _, err := queue.ParseArgs(queueArgs(p.Definition)); err != nil {
		return nil, errorf(PreconditionFailed, "Validation failed\n\n%v", err)
	}
	if ae, ok := p.Definition["alternate-exchange"]; ok {
		if _, isString := ae.(string); !isString {
			return nil, errorf(PreconditionFailed, "Validation failed\n\nalternate-exchange must be a string")
		}
	}
	return &policy{Policy: p, re: re}, nil
}

// queueArgs turns a policy definition into the queue arguments it stands for.
func queueArgs(def map[string]any) map[string]any {
	args := make(map[string]any, len(def))
	for k, val := range def {
		if arg := policyKeys[k]; arg != "" {
			if f, ok := val.(float64); ok && f == float64(int64(f)) {
				val = int64(f) // JSON numbers from the HTTP API
			}
			args[arg] = val
		}
	}
	return args
}

// policyForLocked is the policy that applies to a queue or an exchange, or nil.
func (v *VHost) policyForLocked(name string, forQueue bool) *policy {
	var best *policy
	for _, p := range v.policies {
		if (forQueue && p.ApplyTo == "exchanges") || (!forQueue && p.ApplyTo == "queues") || !p.re.MatchString(name) {
			continue
		}
		if best == nil || p.Priority > best.Priority || (p.Priority == best.Priority && p.Name < best.Name) {
			best = p
		}
	}
	return best
}

// queueConfigLocked is a queue's effective configuration: the policy's keys
// overlaid by the queue's own arguments, which win, as in RabbitMQ.
func (v *VHost) queueConfigLocked(name string, args map[string]any, own queue.Config) queue.Config {
	p := v.policyForLocked(name, true)
	op := v.operatorPolicyForLocked(name)
	if p == nil && op == nil {
		return own
	}
	quorum := own.Type == queue.TypeQuorum
	if quorum && p != nil && quorumUnsupported(p) {
		p = nil
	}
	merged := map[string]any{}
	if p != nil {
		merged = queueArgs(p.Definition)
	}
	maps.Copy(merged, args)
	if op != nil {
		mergeOperator(merged, op)
	}
	cfg, err := queue.ParseArgs(merged)
	if err != nil {
		return own // e.g. a policy routing key without any dead-letter exchange
	}
	if quorum && p != nil {
		cfg = quorumLimits(cfg, own, p)
	}
	return cfg
}

// configUpdate is a queue's new effective configuration.
type configUpdate struct {
	q   queue.Interface
	cfg queue.Config
}

// policyUpdatesLocked works out every queue's effective configuration after
// a policy changed. They are applied with the vhost lock released: a queue
// that drops messages to a new limit dead-letters them through the vhost.
func (v *VHost) policyUpdatesLocked() []configUpdate {
	updates := make([]configUpdate, 0, len(v.queues))
	for _, q := range v.queues {
		own, err := queue.ParseArgs(q.Declared().Args)
		if err != nil {
			continue
		}
		updates = append(updates, configUpdate{q, v.queueConfigLocked(q.Declared().Name, q.Declared().Args, own)})
	}
	return updates
}

func applyUpdates(updates []configUpdate) {
	for _, u := range updates {
		u.q.SetConfig(u.cfg)
	}
}

// alternateLocked is an exchange's alternate exchange: its own argument, or
// its policy's.
func (v *VHost) alternateLocked(e *exchange.Exchange) (string, bool) {
	if ae, ok := e.Args["alternate-exchange"].(string); ok {
		return ae, true
	}
	if len(v.policies) == 0 {
		return "", false
	}
	if p := v.policyForLocked(e.Name, false); p != nil {
		ae, ok := p.Definition["alternate-exchange"].(string)
		return ae, ok
	}
	return "", false
}

// Policies returns the virtual host's policies.
func (v *VHost) Policies() []Policy {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make([]Policy, 0, len(v.policies))
	for _, name := range slices.Sorted(maps.Keys(v.policies)) {
		out = append(out, v.policies[name].Policy)
	}
	return out
}

// PolicyFor names the policy that applies to a queue (forQueue) or an
// exchange, or "".
func (v *VHost) PolicyFor(name string, forQueue bool) string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if p := v.policyForLocked(name, forQueue); p != nil {
		return p.Name
	}
	return ""
}

func (v *VHost) storePolicy(b *storage.Batch, p Policy) { v.storePolicyAs(b, storage.KindPolicy, p) }

func (v *VHost) storePolicyAs(b *storage.Batch, kind string, p Policy) {
	if v.store == nil {
		return
	}
	b.PutDefinition(kind, v.key(p.Name), encodeTable(map[string]any{
		"name": p.Name, "pattern": p.Pattern, "apply-to": p.ApplyTo,
		"priority": int64(p.Priority), "definition": p.Definition,
	}))
}

// recoverPoliciesLocked loads stored policies (operator policies if
// operator), before the queues they shape.
func (v *VHost) recoverPoliciesLocked(records [][]byte, operator bool) error {
	for _, rec := range records {
		t, err := decodeTable(rec)
		if err != nil {
			return fmt.Errorf("vhost %s: stored policy: %w", v.Name, err)
		}
		name, _ := t["name"].(string)
		pattern, _ := t["pattern"].(string)
		applyTo, _ := t["apply-to"].(string)
		prio, _ := queue.IntArg(t["priority"])
		def, _ := t["definition"].(map[string]any)
		pol := Policy{Name: name, Pattern: pattern, ApplyTo: applyTo, Priority: int(prio), Definition: def}
		check, into := v.checkPolicy, v.policies
		if operator {
			check, into = v.checkOperatorPolicy, v.opPolicies
		}
		p, err := check(pol)
		if err != nil {
			return fmt.Errorf("vhost %s: stored policy %q: %w", v.Name, name, err)
		}
		into[name] = p
	}
	return nil
}

// quorumUnsupported reports whether p holds a key that keeps it off quorum
// queues altogether, as RabbitMQ 3.10 does.
func quorumUnsupported(p *policy) bool {
	for _, k := range quorumUnsupportedKeys {
		if _, ok := p.Definition[k]; ok {
			return true
		}
	}
	return false
}

// quorumLimits applies RabbitMQ 3.10's rule for a quorum queue: where the
// policy and an argument both set a limit or a TTL, the lower wins (the
// argument wins otherwise).
func quorumLimits(cfg, own queue.Config, p *policy) queue.Config {
	pol, err := queue.ParseArgs(queueArgs(p.Definition))
	if err != nil {
		return cfg
	}
	lower := func(a, b, merged int64) int64 {
		if a < 0 || b < 0 {
			return merged
		}
		return min(a, b, merged)
	}
	cfg.MaxLength = lower(own.MaxLength, pol.MaxLength, cfg.MaxLength)
	cfg.MaxLengthBytes = lower(own.MaxLengthBytes, pol.MaxLengthBytes, cfg.MaxLengthBytes)
	cfg.DeliveryLimit = lower(own.DeliveryLimit, pol.DeliveryLimit, cfg.DeliveryLimit)
	cfg.MessageTTL = time.Duration(lower(int64(own.MessageTTL), int64(pol.MessageTTL), int64(cfg.MessageTTL)))
	if own.Expires > 0 && pol.Expires > 0 {
		cfg.Expires = min(own.Expires, pol.Expires, cfg.Expires)
	}
	return cfg
}
