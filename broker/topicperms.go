package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/warrenmq/warren/storage"
	"github.com/warrenmq/warren/vhost"
)

// Topic permissions are RabbitMQ's: per user, vhost and topic exchange, a
// write pattern that a publish's routing key must match and a read pattern
// that a binding's key must match. A user without one for an exchange is not
// restricted there. Patterns may name {username} and {vhost}, which are
// replaced before matching, as RabbitMQ's internal backend does.

// TopicPermission is a user's patterns on one topic exchange of a vhost.
type TopicPermission struct {
	User     string `json:"user"`
	Vhost    string `json:"vhost"`
	Exchange string `json:"exchange"`
	Write    string `json:"write"`
	Read     string `json:"read"`
}

// SetTopicPermission sets a user's topic permission on one exchange of a
// vhost, replacing the one it had there.
type SetTopicPermission TopicPermission

// ClearTopicPermissions removes a user's topic permissions on a vhost: on
// one exchange, or on all of them when Exchange is "".
type ClearTopicPermissions struct{ User, Vhost, Exchange string }

// topicPermissions are one account's topic permissions by vhost, then
// exchange; replaced whole (copy on write), read with no lock.
type topicPermissions map[string]map[string]*topicPattern

// topicPattern is a topic permission with its patterns compiled; re is
// nil for a pattern with variables, compiled at each check, and for "",
// which matches nothing, as in RabbitMQ.
type topicPattern struct {
	TopicPermission
	re [2]*regexp.Regexp // write, read
}

func topicKey(vh, user, exchange string) string { return vh + "\x00" + user + "\x00" + exchange }

func compileTopic(p TopicPermission) (*topicPattern, error) {
	tp := &topicPattern{TopicPermission: p}
	for i, src := range [2]string{p.Write, p.Read} {
		re, err := regexp.Compile(src)
		if err != nil {
			return nil, fmt.Errorf("invalid regular expression '%s': %w", src, err)
		}
		if !strings.Contains(src, "{") {
			tp.re[i] = re
		}
	}
	return tp, nil
}

func (op SetTopicPermission) applyTo(b *Broker, actor string) (vhost.Result, error) {
	return b.serial(func(b *Broker, _ string) error {
		a, err := b.reg.Load().accountOn(op.User, op.Vhost)
		if err != nil {
			return err
		}
		tp, err := compileTopic(TopicPermission(op))
		if err != nil {
			return invalid("%v", err)
		}
		var batch storage.Batch
		batch.PutDefinition(storage.KindTopicPermission, topicKey(op.Vhost, op.User, op.Exchange), encodeRecord(TopicPermission(op)))
		if err := b.commit(&batch); err != nil {
			return err
		}
		a.setTopic(op.Vhost, op.Exchange, tp)
		return nil
	}, actor)
}

func (op ClearTopicPermissions) applyTo(b *Broker, actor string) (vhost.Result, error) {
	return b.serial(func(b *Broker, _ string) error {
		a, err := b.reg.Load().accountOn(op.User, op.Vhost)
		if err != nil {
			return err
		}
		var batch storage.Batch
		var gone []string
		for _, tp := range a.topicsOn(op.Vhost) {
			if op.Exchange == "" || tp.Exchange == op.Exchange {
				batch.DeleteDefinition(storage.KindTopicPermission, topicKey(op.Vhost, op.User, tp.Exchange))
				gone = append(gone, tp.Exchange)
			}
		}
		if len(gone) == 0 {
			return &vhost.Error{Kind: vhost.NotFound, Text: fmt.Sprintf("no topic permissions for user '%s' in vhost '%s'", op.User, op.Vhost)}
		}
		if err := b.commit(&batch); err != nil {
			return err
		}
		for _, x := range gone {
			a.setTopic(op.Vhost, x, nil)
		}
		return nil
	}, actor)
}

// setTopic replaces (or, for nil, removes) the account's topic permission
// on exchange x of vhost vh; only ops call it, under Broker.opMu.
func (a *Account) setTopic(vh, x string, tp *topicPattern) {
	next := topicPermissions{}
	if cur := a.topics.Load(); cur != nil {
		for v, xs := range *cur {
			next[v] = xs
		}
	}
	xs := maps.Clone(next[vh])
	if xs == nil {
		xs = map[string]*topicPattern{}
	}
	if tp == nil {
		delete(xs, x)
	} else {
		xs[x] = tp
	}
	if len(xs) == 0 {
		delete(next, vh)
	} else {
		next[vh] = xs
	}
	if len(next) == 0 {
		a.topics.Store(nil)
		return
	}
	a.topics.Store(&next)
}

// topicsOn lists the account's topic permissions on vh, by exchange.
func (a *Account) topicsOn(vh string) []TopicPermission {
	cur := a.topics.Load()
	if cur == nil {
		return nil
	}
	xs := (*cur)[vh]
	out := make([]TopicPermission, 0, len(xs))
	for _, x := range slices.Sorted(maps.Keys(xs)) {
		out = append(out, xs[x].TopicPermission)
	}
	return out
}

// HasTopicPermissions reports whether the user has any topic permission
// on vh: when not, a publish or bind needs no topic check (one atomic
// load on the publish path).
func (a *Account) HasTopicPermissions(vh string) bool {
	cur := a.topics.Load()
	return cur != nil && len((*cur)[vh]) > 0
}

// TopicAllowed reports whether the user may write (publish) or read (bind)
// routing key on topic exchange x of vh. Only Write and Read are topic
// accesses; without a topic permission on x everything is allowed.
func (a *Account) TopicAllowed(vh, x string, what Access, key string) bool {
	cur := a.topics.Load()
	if cur == nil {
		return true
	}
	tp := (*cur)[vh][x]
	if tp == nil {
		return true
	}
	i, src := 0, tp.Write
	if what == Read {
		i, src = 1, tp.Read
	}
	if src == "" {
		return false
	}
	if re := tp.re[i]; re != nil {
		return re.MatchString(key)
	}
	src = strings.NewReplacer("{username}", a.name, "{vhost}", vh).Replace(src)
	re, err := regexp.Compile(src)
	return err == nil && re.MatchString(key)
}

// TopicPermissions lists the topic permissions of every user (user == "")
// or of one, on every vhost (vh == "") or one, sorted by user, vhost and
// exchange.
func (b *Broker) TopicPermissions(user, vh string) []TopicPermission {
	reg := b.reg.Load()
	var out []TopicPermission
	for _, name := range slices.Sorted(maps.Keys(reg.accounts)) {
		if user != "" && name != user {
			continue
		}
		a := reg.accounts[name]
		cur := a.topics.Load()
		if cur == nil {
			continue
		}
		for _, v := range slices.Sorted(maps.Keys(*cur)) {
			if vh == "" || v == vh {
				out = append(out, a.topicsOn(v)...)
			}
		}
	}
	return out
}

// restoreTopicPermissions loads the stored topic permissions at start,
// after the users and vhosts.
func (b *Broker) restoreTopicPermissions() error {
	reg := b.reg.Load()
	return b.store.Definitions(storage.KindTopicPermission, func(key string, value []byte) error {
		var r TopicPermission
		err := json.Unmarshal(value, &r)
		if err == nil && topicKey(r.Vhost, r.User, r.Exchange) != key {
			err = errors.New("the record does not match its key")
		}
		var tp *topicPattern
		if err == nil {
			tp, err = compileTopic(r)
		}
		if err != nil {
			return fmt.Errorf("%w: %s: stored topic permission %q: %v", storage.ErrCorrupt, b.store.Path(), key, err)
		}
		a := reg.accounts[r.User]
		if a == nil || reg.vhosts[r.Vhost] == nil {
			b.log.Warn("a stored topic permission names a missing user or vhost; ignored", "user", r.User, "vhost", r.Vhost)
			return nil
		}
		a.setTopic(r.Vhost, r.Exchange, tp)
		return nil
	})
}

// deleteTopicsOf adds to batch the deletion of a's topic permissions on
// vh (every vhost when ""), and returns what to apply once it is committed.
func (a *Account) deleteTopicsOf(batch *storage.Batch, vh string) func() {
	cur := a.topics.Load()
	if cur == nil {
		return func() {}
	}
	var gone [][2]string
	for v, xs := range *cur {
		if vh != "" && v != vh {
			continue
		}
		for x := range xs {
			batch.DeleteDefinition(storage.KindTopicPermission, topicKey(v, a.name, x))
			gone = append(gone, [2]string{v, x})
		}
	}
	return func() {
		for _, g := range gone {
			a.setTopic(g[0], g[1], nil)
		}
	}
}
