package wire

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp/wire/internal/gen/specgen"
)

// specPath is the spec data in the repository, as seen from this package
// directory; go:generate in doc.go reads the same file.
const specPath = "internal/gen/spec/amqp-rabbitmq-0.9.1.json"

// TestSpecGenUpToDate regenerates spec_gen.go and fails if the committed file
// differs. The spec is part of the repository, so this never skips.
func TestSpecGenUpToDate(t *testing.T) {
	data, err := os.ReadFile(specPath)
	require.NoError(t, err)
	want, err := specgen.Generate(data, filepath.Base(specPath))
	require.NoError(t, err)
	got, err := os.ReadFile("spec_gen.go")
	require.NoError(t, err)
	if !bytes.Equal(got, want) {
		t.Fatal("spec_gen.go is stale: run go generate ./amqp/wire")
	}
}

func TestGoName(t *testing.T) {
	for in, want := range map[string]string{
		"reserved-1":          "Reserved1",
		"routing-key":         "RoutingKey",
		"no-ack":              "NoAck",
		"nowait":              "NoWait",
		"if-unused":           "IfUnused",
		"delivery-tag":        "DeliveryTag",
		"class-id":            "ClassID",
		"server-properties":   "ServerProperties",
		"update-secret-ok":    "UpdateSecretOk",
		"PRECONDITION-FAILED": "PreconditionFailed",
	} {
		require.Equal(t, want, specgen.GoName(in), in)
	}
}
