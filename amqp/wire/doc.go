// Package wire encodes and decodes AMQP 0-9-1 frames in RabbitMQ's dialect:
// the protocol header, frames, method arguments, field tables and basic content
// properties. It knows nothing of queues or brokers.
//
// Encoders append to a caller's buffer and decoders reuse their values, so the
// per-message path (publish in, deliver out) does not allocate per frame.
// Method structs and constants are generated from RabbitMQ's codegen JSON.
package wire

//go:generate go run ./internal/gen -spec internal/gen/spec/amqp-rabbitmq-0.9.1.json -out spec_gen.go
