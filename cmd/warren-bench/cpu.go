package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100
// on every Linux architecture Go supports (sysconf would need cgo).
const clockTicks = 100

// cpuTime returns the CPU time, user plus system, that process pid has used
// so far, in seconds. Where there is no /proc (macOS, Windows) or no PID it
// returns ok false, and the report says n/a.
func cpuTime(pid int) (secs float64, ok bool) {
	if pid <= 0 {
		return 0, false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	utime, stime, err := parseStat(string(data))
	if err != nil {
		return 0, false
	}
	return float64(utime+stime) / clockTicks, true
}

// parseStat reads utime and stime (fields 14 and 15) from a /proc/PID/stat
// line. The command name (field 2) is in parentheses and may hold spaces, so
// fields are counted after its closing parenthesis.
func parseStat(line string) (utime, stime uint64, err error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("no command name in %q", line)
	}
	f := strings.Fields(line[i+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("short stat line %q", line)
	}
	if utime, err = strconv.ParseUint(f[11], 10, 64); err != nil {
		return 0, 0, err
	}
	if stime, err = strconv.ParseUint(f[12], 10, 64); err != nil {
		return 0, 0, err
	}
	return utime, stime, nil
}

// cpuPerMessage is the broker's CPU time in microseconds per message handled
// in a run: over the whole run, divided by the messages of the whole run
// (deliveries when there are more of them than publishes, as in a fanout).
func cpuPerMessage(cpuSecs float64, r *perfResult) (float64, bool) {
	msgs := max(r.TotalPublished, r.TotalConsumed)
	if msgs <= 0 {
		return 0, false
	}
	return cpuSecs * 1e6 / float64(msgs), true
}
