package main

import "testing"

func TestParseStat(t *testing.T) {
	tests := []struct {
		name         string
		line         string
		utime, stime uint64
		wantErr      bool
	}{
		{"warren", "1234 (warren) S 1 1234 1234 0 -1 4194560 5843 0 0 0 417 93 0 0 20 0 9 0 1000 0 0", 417, 93, false},
		{"space and parenthesis in the name", "99 (beam.smp (x) y) S 1 99 99 0 -1 0 0 0 0 0 12 34 0 0", 12, 34, false},
		{"no name", "garbage", 0, 0, true},
		{"short", "1 (a) S 1 2 3", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, s, err := parseStat(tt.line)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if u != tt.utime || s != tt.stime {
				t.Errorf("utime, stime = %d, %d, want %d, %d", u, s, tt.utime, tt.stime)
			}
		})
	}
}

func TestCPUPerMessage(t *testing.T) {
	tests := []struct {
		name   string
		cpu    float64
		r      perfResult
		want   float64
		wantOK bool
	}{
		{"publishes", 1.5, perfResult{TotalPublished: 100_000, TotalConsumed: 90_000}, 15, true},
		{"fanout counts deliveries", 2, perfResult{TotalPublished: 10_000, TotalConsumed: 100_000}, 20, true},
		{"nothing sent", 1, perfResult{}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := cpuPerMessage(tt.cpu, &tt.r)
			if ok != tt.wantOK || got != tt.want {
				t.Errorf("cpuPerMessage = %v, %v, want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
