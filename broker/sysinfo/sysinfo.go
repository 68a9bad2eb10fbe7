// Package sysinfo reads what the resource alarms and metrics need from the
// operating system: the process's resident memory, the machine's memory
// and the free space under a directory. Each reader reports whether the
// system offers it; where it does not, the caller turns the alarm off.
package sysinfo
