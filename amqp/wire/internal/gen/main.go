// Command gen writes package wire's spec_gen.go from RabbitMQ's AMQP 0-9-1 codegen JSON.
//
//	go run ./internal/gen -spec internal/gen/spec/amqp-rabbitmq-0.9.1.json -out spec_gen.go
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/warrenmq/warren/amqp/wire/internal/gen/specgen"
)

func main() {
	specPath := flag.String("spec", "", "path to amqp-rabbitmq-0.9.1.json")
	out := flag.String("out", "spec_gen.go", "output file")
	flag.Parse()
	if err := run(*specPath, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(specPath, out string) error {
	if specPath == "" {
		return fmt.Errorf("-spec is required")
	}
	data, err := os.ReadFile(specPath)
	if err != nil {
		return err
	}
	src, err := specgen.Generate(data, filepath.Base(specPath))
	if err != nil {
		return err
	}
	return os.WriteFile(out, src, 0o644)
}
