// Package conformance holds black-box tests that drive a real Warren listener
// through real AMQP clients: amqp091-go here, and pika, amqplib and amqp-tools
// in the interop tests.
package conformance
