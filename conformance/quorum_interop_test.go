//go:build unix

package conformance

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Quorum queues through real client libraries: declare, publish with
// confirms, consume, nack with requeue and x-delivery-count, and the
// global-prefetch refusal. Each script checks RabbitMQ 3.10.8's behaviour
// and exits non-zero on a difference.

func TestInteropPikaQuorum(t *testing.T) {
	python, reason := pythonWithPika()
	requireInteropClient(t, reason)
	runQuorumScript(t, python, "interop/pika/quorum.py")
}

func TestInteropAmqplibQuorum(t *testing.T) {
	var reason string
	node, err := exec.LookPath("node")
	if err != nil {
		reason = "node not found on PATH (install Node.js 20), then: cd conformance/interop/node && npm ci"
	} else if _, err := os.Stat("interop/node/node_modules/amqplib/package.json"); err != nil {
		reason = "amqplib is not installed: cd conformance/interop/node && npm ci"
	}
	requireInteropClient(t, reason)
	runQuorumScript(t, node, "interop/node/quorum.js")
}

// TestInteropKombuQuorum: a Celery-style task queue with
// queue_arguments {"x-queue-type": "quorum"} through kombu.
func TestInteropKombuQuorum(t *testing.T) {
	python, reason := pythonWithModule("kombu", "python3-kombu")
	requireInteropClient(t, reason)
	runQuorumScript(t, python, "interop/kombu/quorum.py")
}

// requireInteropClient skips for a missing client, or fails when CI
// requires the clients (WARREN_REQUIRE_INTEROP=1).
func requireInteropClient(t *testing.T, reason string) {
	t.Helper()
	if reason == "" {
		return
	}
	if os.Getenv(requireInteropEnv) == "1" {
		t.Fatalf("%s=1 but the client is missing: %s", requireInteropEnv, reason)
	}
	t.Skip(reason)
}

// runQuorumScript runs one script against a broker that declares quorum
// queues (it skips otherwise).
func runQuorumScript(t *testing.T, interpreter, script string) {
	t.Helper()
	b := startQuorumBroker(t)
	out, err := runScript(t, []string{interpreter, script, b.URL})
	if err != nil {
		t.Fatalf("%s against %s: %v\n%s", script, b.URL, err, out)
	}
	t.Logf("%s\n%s", script, out)
}

// pythonWithModule finds a Python that can import module; Debian's
// packages are for /usr/bin/python3, which need not be first on PATH.
func pythonWithModule(module, debianPackage string) (python, reason string) {
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	for _, p := range candidates {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := exec.CommandContext(ctx, p, "-c", "import "+module).Run()
		cancel()
		if err == nil {
			return p, ""
		}
	}
	return "", "no python3 with " + module + " (tried /usr/bin/python3 and python3 on PATH): apt-get install -y " + debianPackage
}
