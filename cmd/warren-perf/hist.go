package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// The latency histogram is HDR-style: values below 2*subBuckets nanoseconds
// get a bucket each; above that, every power of two is split into subBuckets
// equal buckets, so a recorded value is off by at most 1/subBuckets (1.6 %).
// The bucket array is fixed, so recording never allocates.
const (
	subBits    = 6
	subBuckets = 1 << subBits
	// maxValue caps recorded values at about 18 minutes.
	maxValue = 1<<40 - 1
	nBuckets = (40-subBits)*subBuckets + subBuckets
)

// bucketOf returns the index of the bucket holding v nanoseconds.
func bucketOf(v uint64) int {
	if v < 2*subBuckets {
		return int(v)
	}
	if v > maxValue {
		v = maxValue
	}
	e := bits.Len64(v) - subBits - 1
	return (e+1)*subBuckets + int(v>>e) - subBuckets
}

// bucketHigh returns the highest value that falls into bucket i.
func bucketHigh(i int) uint64 {
	if i < 2*subBuckets {
		return uint64(i)
	}
	e := i/subBuckets - 1
	m := uint64(i%subBuckets + subBuckets)
	return (m+1)<<e - 1
}

// recorder is one consumer's histogram. Only its consumer writes it; the
// progress reporter reads it concurrently, hence the atomics (uncontended,
// so a few nanoseconds each).
type recorder struct {
	counts [nBuckets]atomic.Uint64
	max    atomic.Uint64
}

// record adds one latency of d.
func (r *recorder) record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	r.counts[bucketOf(v)].Add(1)
	if v > r.max.Load() {
		r.max.Store(v)
	}
}

// addTo adds the recorder's current counts to h.
func (r *recorder) addTo(h *histogram) {
	for i := range r.counts {
		c := r.counts[i].Load()
		h.counts[i] += c
		h.n += c
	}
	h.max = max(h.max, r.max.Load())
}

// histogram is a plain snapshot: the sum of recorders at one instant, or the
// difference of two snapshots (a window).
type histogram struct {
	counts [nBuckets]uint64
	n      uint64
	// max is the exact largest value recorded up to the snapshot; in a
	// difference it is bounded by the window's highest bucket.
	max uint64
}

// sub returns h minus an earlier snapshot of the same recorders.
func (h *histogram) sub(earlier *histogram) *histogram {
	d := &histogram{}
	top := -1
	for i := range h.counts {
		d.counts[i] = h.counts[i] - earlier.counts[i]
		d.n += d.counts[i]
		if d.counts[i] > 0 {
			top = i
		}
	}
	if top >= 0 {
		d.max = min(h.max, bucketHigh(top))
	}
	return d
}

// quantile returns the value at or below which the fraction q (0..1) of the
// recorded values lie: the high end of the bucket holding that rank, but never
// more than the exact maximum. It is 0 for an empty histogram.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := bucketHigh(i)
			if h.max > 0 {
				v = min(v, h.max)
			}
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}
