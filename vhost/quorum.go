package vhost

import (
	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/event"
	"github.com/warrenmq/warren/queue"
)

// quorumRefusedArgs are the queue arguments RabbitMQ 3.10 knows that a
// quorum queue refuses, in the order it checks them.
var quorumRefusedArgs = []string{
	"x-max-priority", "x-queue-mode", "x-queue-version", "x-queue-master-locator",
	"x-max-age", "x-stream-max-segment-size-bytes", "x-initial-cluster-size",
}

// quorumDeclarable applies RabbitMQ 3.10's rules for a new quorum queue,
// after the argument values were checked: first the arguments the type
// refuses, then the properties (auto-delete, exclusive, non-durable).
func (v *VHost) quorumDeclarable(op DeclareQueue) error {
	if v.quorum == nil {
		return errorf(PreconditionFailed, "invalid arg 'x-queue-type' for queue '%s' in vhost '%s': \"unsupported queue type 'quorum'\"", op.Name, v.Name)
	}
	for _, k := range quorumRefusedArgs {
		if _, ok := op.Args[k]; ok {
			return errorf(PreconditionFailed, "invalid arg '%s' for queue '%s' in vhost '%s' of queue type rabbit_quorum_queue", k, op.Name, v.Name)
		}
	}
	property := ""
	switch {
	case op.AutoDelete:
		property = "auto-delete"
	case op.Exclusive:
		property = "exclusive-owner"
	case !op.Durable:
		property = "non-durable"
	}
	if property != "" {
		return errorf(PreconditionFailed, "invalid property '%s' for queue '%s' in vhost '%s'", property, op.Name, v.Name)
	}
	return nil
}

// declareQuorumLocked makes a quorum queue: its raft group is created
// (durably) first, then its definition is stored with the group's id.
func (v *VHost) declareQuorumLocked(op DeclareQueue, cfg queue.Config, t *txn) error {
	q, err := v.newQuorum(op.Name, op.Args, v.queueConfigLocked(op.Name, op.Args, cfg), 0)
	if err != nil {
		return errorf(InternalError, "cannot create quorum queue '%s' in vhost '%s': %v", op.Name, v.Name, err)
	}
	v.queues[op.Name] = q
	t.onUndo(func() {
		if v.queues[op.Name] == q {
			delete(v.queues, op.Name)
		}
	})
	t.onFailure(func() { q.Delete() })
	v.storeQueue(&t.b, q)
	v.emit(t, "queue.created", func() wire.Table {
		return event.QueueCreated(v.Name, q.Name, true, false, false, "", q.Args, t.actor)
	})
	return nil
}

func (v *VHost) newQuorum(name string, args map[string]any, cfg queue.Config, group uint64) (*queue.Quorum, error) {
	return v.quorum.NewQuorum(name, queue.QuorumOptions{
		Args: args, Config: cfg, Group: group,
		Hooks: queue.Hooks{DeadLetter: v.deadLetter, Expired: v.expireQueue},
	})
}
