// Package configs holds Warren's default configuration file. Only the warren
// command reads it; library packages take typed options such as amqp.Config.
package configs

import _ "embed" // for go:embed

// Default is the text of warren.yaml: every configuration key with its
// default value. The warren command layers --config files, environment
// variables and flags over it, so this file is the one source of defaults.
//
//go:embed warren.yaml
var Default []byte
