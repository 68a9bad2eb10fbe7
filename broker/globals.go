package broker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/warrenmq/warren/storage"
	"github.com/warrenmq/warren/vhost"
)

// ClusterNameParameter is the global parameter RabbitMQ keeps the cluster
// name in (rabbitmqctl set_cluster_name, PUT /api/cluster-name).
const ClusterNameParameter = "cluster_name"

// SetGlobalParameter sets a global runtime parameter (RabbitMQ's
// set_global_parameter): any JSON value under a name.
type SetGlobalParameter struct {
	Name  string
	Value json.RawMessage
}

// ClearGlobalParameter removes a global runtime parameter; one that does
// not exist is a NotFound error.
type ClearGlobalParameter struct{ Name string }

func (op SetGlobalParameter) applyTo(b *Broker, actor string) (vhost.Result, error) {
	return b.serial(func(b *Broker, _ string) error {
		if op.Name == "" {
			return invalid("global parameter name must not be empty")
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, op.Value); err != nil || compact.Len() == 0 {
			return invalid("global parameter value must be JSON")
		}
		return b.changeGlobal(op.Name, compact.Bytes())
	}, actor)
}

func (op ClearGlobalParameter) applyTo(b *Broker, actor string) (vhost.Result, error) {
	return b.serial(func(b *Broker, _ string) error {
		if _, ok := b.GlobalParameter(op.Name); !ok {
			return &vhost.Error{Kind: vhost.NotFound, Text: fmt.Sprintf("no global parameter '%s'", op.Name)}
		}
		return b.changeGlobal(op.Name, nil)
	}, actor)
}

// changeGlobal stores (value non-nil) or deletes one global parameter and
// publishes the new set; the caller holds opMu.
func (b *Broker) changeGlobal(name string, value json.RawMessage) error {
	var batch storage.Batch
	next := map[string]json.RawMessage{}
	if cur := b.globals.Load(); cur != nil {
		next = maps.Clone(*cur)
	}
	if value == nil {
		batch.DeleteDefinition(storage.KindGlobal, name)
		delete(next, name)
	} else {
		batch.PutDefinition(storage.KindGlobal, name, value)
		next[name] = value
	}
	if err := b.commit(&batch); err != nil {
		return err
	}
	b.globals.Store(&next)
	return nil
}

// restoreGlobals loads the stored global parameters at start.
func (b *Broker) restoreGlobals() error {
	g := map[string]json.RawMessage{}
	err := b.store.Definitions(storage.KindGlobal, func(key string, value []byte) error {
		if !json.Valid(value) {
			return fmt.Errorf("%w: %s: stored global parameter %q is not JSON", storage.ErrCorrupt, b.store.Path(), key)
		}
		g[key] = value
		return nil
	})
	if err != nil {
		return err
	}
	b.globals.Store(&g)
	return nil
}

// GlobalParameter returns one global parameter's JSON value.
func (b *Broker) GlobalParameter(name string) (json.RawMessage, bool) {
	g := b.globals.Load()
	if g == nil {
		return nil, false
	}
	v, ok := (*g)[name]
	return v, ok
}

// GlobalParameterNames returns the names of the global parameters, sorted.
func (b *Broker) GlobalParameterNames() []string {
	g := b.globals.Load()
	if g == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(*g))
}

// DefaultNodeName is the node name Warren reports, RabbitMQ's
// rabbit@host form with warren for rabbit.
func DefaultNodeName() string {
	h, _ := os.Hostname()
	if h == "" {
		h = "localhost"
	}
	return "warren@" + h
}

// ClusterName is the cluster name: the cluster_name global parameter when
// it is a string, else the node name, as RabbitMQ's default.
func (b *Broker) ClusterName() string {
	if v, ok := b.GlobalParameter(ClusterNameParameter); ok {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	}
	return DefaultNodeName()
}
