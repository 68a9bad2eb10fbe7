// Package shovel runs dynamic shovels as rabbitmq_shovel does: each moves
// messages from a queue or exchange on one broker to a queue or exchange on
// another, through AMQP 0-9-1 clients (amqp091-go) at both ends, so either
// end may be any broker. A URI without a host ("amqp://", "amqp:///vh") is
// this broker, reached in process.
//
// Shovels are "shovel" runtime parameters: the Manager stores their values
// in the broker's storage as given, starts them again at start, and owns
// their goroutines (Close stops them and waits).
package shovel

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/warrenmq/warren/storage"
)

// Component is the runtime parameter component shovels are stored under.
const Component = "shovel"

// Options configure a Manager.
type Options struct {
	// Store keeps the parameters; nil keeps them in memory only.
	Store *storage.Store
	// Local opens an in-process connection to this broker's vhost,
	// authenticated as the internal user (for URIs without a host).
	Local func(vhost string) (net.Conn, error)
	// Node is shown as the shovels' node and in x-shovelled headers.
	Node string
	Log  *slog.Logger
}

// Parameter is a stored shovel definition.
type Parameter struct {
	Vhost, Name string
	Value       json.RawMessage // as given, compacted
}

type key struct{ vhost, name string }

// Manager holds the dynamic shovels of a broker.
type Manager struct {
	o   Options
	log *slog.Logger

	mu      sync.Mutex // guards params, running, closed
	params  map[key]json.RawMessage
	running map[key]*shovel
	closed  bool
	wg      sync.WaitGroup // every shovel goroutine
}

// NewManager makes a Manager and starts the shovels stored in o.Store.
func NewManager(o Options) (*Manager, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Node == "" {
		h, _ := os.Hostname()
		o.Node = "warren@" + h
	}
	m := &Manager{o: o, log: o.Log, params: make(map[key]json.RawMessage), running: make(map[key]*shovel)}
	if o.Store != nil {
		err := o.Store.Definitions(storage.KindParameter, func(k string, v []byte) error {
			comp, vh, name, ok := splitKey(k)
			if !ok || comp != Component {
				return nil
			}
			m.params[key{vh, name}] = json.RawMessage(bytes.Clone(v))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, v := range m.params {
		sp, err := Parse(k.name, v)
		if err != nil {
			m.log.Error("stored shovel is invalid; not started", "vhost", k.vhost, "shovel", k.name, "err", err)
			continue
		}
		m.startLocked(k, sp)
	}
	return m, nil
}

func storeKey(vh, name string) string { return Component + "\x00" + vh + "\x00" + name }

func splitKey(k string) (comp, vh, name string, ok bool) {
	parts := strings.SplitN(k, "\x00", 3)
	if len(parts) != 3 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// ErrClosed is returned by changes after Close.
var ErrClosed = errors.New("shovel: manager closed")

// Put validates, stores and (re)starts the shovel vhost/name. It returns
// whether it existed, or a *ValidationError.
func (m *Manager) Put(vh, name string, value json.RawMessage) (existed bool, err error) {
	sp, err := Parse(name, value)
	if err != nil {
		return false, err
	}
	// Stored and shown with sorted keys, as RabbitMQ shows a value.
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return false, err
	}
	norm, err := json.Marshal(v)
	if err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false, ErrClosed
	}
	k := key{vh, name}
	_, existed = m.params[k]
	if m.o.Store != nil {
		var b storage.Batch
		b.PutDefinition(storage.KindParameter, storeKey(vh, name), norm)
		if err := m.o.Store.Commit(&b); err != nil {
			return existed, err
		}
	}
	m.params[k] = norm
	m.stopLocked(k)
	m.startLocked(k, sp)
	return existed, nil
}

// Delete stops and forgets the shovel vhost/name; false if there was none.
func (m *Manager) Delete(vh, name string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.deleteLocked(key{vh, name})
}

func (m *Manager) deleteLocked(k key) (bool, error) {
	if _, ok := m.params[k]; !ok {
		return false, nil
	}
	if m.o.Store != nil {
		var b storage.Batch
		b.DeleteDefinition(storage.KindParameter, storeKey(k.vhost, k.name))
		if err := m.o.Store.Commit(&b); err != nil {
			return true, err
		}
	}
	delete(m.params, k)
	m.stopLocked(k)
	return true, nil
}

// DeleteVhost deletes every shovel of a vhost that is being deleted, as
// RabbitMQ clears a deleted vhost's runtime parameters.
func (m *Manager) DeleteVhost(vh string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for k := range m.params {
		if k.vhost == vh {
			if _, err := m.deleteLocked(k); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Restart stops the shovel vhost/name and starts it again (RabbitMQ's
// restart_shovel); false if there is none.
func (m *Manager) Restart(vh, name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := key{vh, name}
	s := m.running[k]
	if s == nil || m.closed {
		return false
	}
	m.stopLocked(k)
	m.startLocked(k, s.spec)
	return true
}

// startLocked starts a shovel's goroutine, counted in m.wg.
func (m *Manager) startLocked(k key, sp *Spec) {
	if m.closed {
		return
	}
	s := &shovel{m: m, name: k.name, vhost: k.vhost, spec: sp, stop: make(chan struct{}), done: make(chan struct{})}
	s.st = Status{Name: k.name, Vhost: k.vhost, Spec: sp}
	m.running[k] = s
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		s.run()
	}()
}

// stopLocked stops a shovel and waits for its goroutine. The goroutine
// never takes m.mu except in completed, which does not wait for it.
func (m *Manager) stopLocked(k key) {
	s := m.running[k]
	if s == nil {
		return
	}
	delete(m.running, k)
	s.halt()
	s.wait()
}

// completed deletes a shovel that has moved its src-delete-after messages,
// as RabbitMQ does. Its goroutine has returned.
func (m *Manager) completed(s *shovel) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := key{s.vhost, s.name}
	if m.running[k] != s {
		return // replaced or deleted meanwhile
	}
	delete(m.running, k)
	s.halt()
	if m.o.Store != nil {
		var b storage.Batch
		b.DeleteDefinition(storage.KindParameter, storeKey(k.vhost, k.name))
		if err := m.o.Store.Commit(&b); err != nil {
			m.log.Error("deleting a completed shovel failed", "vhost", k.vhost, "shovel", k.name, "err", err)
		}
	}
	delete(m.params, k)
	m.log.Info("shovel completed and deleted", "vhost", k.vhost, "shovel", k.name)
}

// Parameters are the stored shovels of vhost vh ("" for all), by vhost
// and name.
func (m *Manager) Parameters(vh string) []Parameter {
	m.mu.Lock()
	out := make([]Parameter, 0, len(m.params))
	for k, v := range m.params {
		if vh == "" || k.vhost == vh {
			out = append(out, Parameter{Vhost: k.vhost, Name: k.name, Value: v})
		}
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Vhost != out[j].Vhost {
			return out[i].Vhost < out[j].Vhost
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Statuses are the running shovels of vhost vh ("" for all), by vhost and
// name.
func (m *Manager) Statuses(vh string) []Status {
	m.mu.Lock()
	var out []Status
	for k, s := range m.running {
		if vh == "" || k.vhost == vh {
			out = append(out, s.status())
		}
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Vhost != out[j].Vhost {
			return out[i].Vhost < out[j].Vhost
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Close stops every shovel and waits for their goroutines. The stored
// parameters stay: they start again with the next Manager.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	running := m.running
	for _, s := range running {
		s.halt()
	}
	m.running = make(map[key]*shovel)
	m.mu.Unlock()
	for _, s := range running {
		s.wait()
	}
	m.wg.Wait()
}
