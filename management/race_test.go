//go:build race

package management_test

const raceEnabled = true
