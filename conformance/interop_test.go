//go:build unix

package conformance

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// requireInteropEnv turns a missing client into a failure instead of a skip
// (CI sets it, so a broken install step cannot hide the interop tests).
const requireInteropEnv = "WARREN_REQUIRE_INTEROP"

// interopTimeout bounds one tutorial script; each script also bounds itself
// (about 20 s) and fails with a message before this kills it.
const interopTimeout = 60 * time.Second

// tutorials are the six RabbitMQ tutorial patterns; each client directory
// under interop/ has one script per pattern, named after it.
var tutorials = []string{
	"hello_world",       // 1: one queue, one producer, one consumer
	"work_queues",       // 2: durable queue, prefetch 1, manual acks, fair dispatch
	"publish_subscribe", // 3: fanout to two exclusive server-named queues
	"routing",           // 4: direct exchange by severity
	"topics",            // 5: topic exchange, *.orange.* and lazy.#
	"rpc",               // 6: reply_to callback queue and correlation ids
}

func TestInteropPika(t *testing.T) {
	python, reason := pythonWithPika()
	runTutorials(t, "interop/pika", ".py", []string{python}, reason)
}

func TestInteropAmqplib(t *testing.T) {
	var reason string
	node, err := exec.LookPath("node")
	if err != nil {
		reason = "node not found on PATH (install Node.js 20), then: cd conformance/interop/node && npm ci"
	} else if _, err := os.Stat("interop/node/node_modules/amqplib/package.json"); err != nil {
		reason = "amqplib is not installed: cd conformance/interop/node && npm ci"
	}
	runTutorials(t, "interop/node", ".js", []string{node}, reason)
}

func TestInteropAmqpTools(t *testing.T) {
	var reason string
	for _, tool := range []string{"amqp-publish", "amqp-consume", "amqp-get", "amqp-declare-queue", "amqp-delete-queue", "bash", "timeout"} {
		if _, err := exec.LookPath(tool); err != nil {
			reason = tool + " not found on PATH: apt-get install -y amqp-tools"
			break
		}
	}
	runTutorials(t, "interop/amqp-tools", ".sh", []string{"bash"}, reason)
}

// pythonWithPika finds a Python that can import pika. Debian's python3-pika
// is for /usr/bin/python3, which need not be the python3 first on PATH.
func pythonWithPika() (python, reason string) {
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	for _, p := range candidates {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := exec.CommandContext(ctx, p, "-c", "import pika").Run()
		cancel()
		if err == nil {
			return p, ""
		}
	}
	return "", "no python3 with pika (tried /usr/bin/python3 and python3 on PATH): apt-get install -y python3-pika"
}

// runTutorials runs dir/<tutorial><ext> for every tutorial as a subtest,
// each against its own broker. A non-empty skipReason means the client is
// missing: skip, or fail when WARREN_REQUIRE_INTEROP=1.
func runTutorials(t *testing.T, dir, ext string, interpreter []string, skipReason string) {
	if skipReason != "" {
		if os.Getenv(requireInteropEnv) == "1" {
			t.Fatalf("%s=1 but the client is missing: %s", requireInteropEnv, skipReason)
		}
		t.Skip(skipReason)
	}
	for _, name := range tutorials {
		t.Run(name, func(t *testing.T) {
			b := startBroker(t)
			script := filepath.Join(dir, name+ext)
			if _, err := os.Stat(script); err != nil {
				t.Fatalf("missing script: %v", err)
			}
			out, err := runScript(t, append(interpreter, script, b.URL))
			if err != nil {
				t.Fatalf("%s against %s: %v\n%s", script, b.URL, err, out)
			}
			t.Logf("%s\n%s", script, out)
		})
	}
}

// runScript runs argv in its own process group with a timeout and returns
// its combined output. On timeout the whole group is killed, so background
// consumers a script started cannot outlive it or hold its output open.
func runScript(t *testing.T, argv []string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), interopTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return out, errors.New("timed out after " + interopTimeout.String())
	}
	return out, err
}

// TestInteropPikaDelayedScheduling: MassTransit-style scheduling (a
// delayed exchange bound to the destination exchange) through pika.
func TestInteropPikaDelayedScheduling(t *testing.T) {
	python, reason := pythonWithPika()
	if reason != "" {
		if os.Getenv(requireInteropEnv) == "1" {
			t.Fatalf("%s=1 but the client is missing: %s", requireInteropEnv, reason)
		}
		t.Skip(reason)
	}
	b := startBroker(t)
	if b.External {
		t.Skip("RabbitMQ here has no rabbitmq_delayed_message_exchange")
	}
	out, err := runScript(t, []string{python, "interop/pika/delayed_scheduling.py", b.URL})
	if err != nil {
		t.Fatalf("delayed_scheduling.py: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
