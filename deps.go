//go:build tools

package warren

import (
	_ "github.com/rabbitmq/amqp091-go"
	_ "github.com/spf13/pflag"
	_ "github.com/spf13/viper"
	_ "github.com/stretchr/testify/require"
	_ "go.etcd.io/bbolt"
)
