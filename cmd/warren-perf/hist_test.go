package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBucketsCoverValuesInOrder(t *testing.T) {
	prev := -1
	for v := uint64(0); v < 1<<20; v++ {
		b := bucketOf(v)
		require.GreaterOrEqual(t, b, prev, "value %d", v)
		require.LessOrEqual(t, b, prev+1, "value %d skips a bucket", v)
		require.GreaterOrEqual(t, bucketHigh(b), v, "value %d above its bucket's high", v)
		prev = b
	}
	assert.Equal(t, nBuckets-1, bucketOf(maxValue))
	assert.Equal(t, nBuckets-1, bucketOf(1<<63))
	assert.Equal(t, uint64(maxValue), bucketHigh(nBuckets-1))
}

func TestBucketPrecision(t *testing.T) {
	for _, v := range []uint64{1000, 123_456, 9_999_999, 3_000_000_000} {
		hi := bucketHigh(bucketOf(v))
		assert.LessOrEqual(t, float64(hi-v)/float64(v), 1.0/subBuckets, "value %d, bucket high %d", v, hi)
	}
}

func TestQuantiles(t *testing.T) {
	var r recorder
	for i := 1; i <= 1000; i++ {
		r.record(time.Duration(i) * time.Microsecond)
	}
	h := &histogram{}
	r.addTo(h)
	require.Equal(t, uint64(1000), h.n)
	near := func(want time.Duration, got time.Duration) {
		t.Helper()
		assert.InEpsilon(t, float64(want), float64(got), 1.0/subBuckets, "want %v got %v", want, got)
	}
	near(500*time.Microsecond, h.quantile(0.50))
	near(950*time.Microsecond, h.quantile(0.95))
	near(990*time.Microsecond, h.quantile(0.99))
	assert.Equal(t, time.Millisecond, h.quantile(1), "p100 is the exact max")
	assert.Equal(t, uint64(time.Millisecond), h.max)
}

func TestWindowIsTheDifference(t *testing.T) {
	var r recorder
	for range 100 {
		r.record(time.Second) // warmup: slow
	}
	before := &histogram{}
	r.addTo(before)
	for range 100 {
		r.record(time.Millisecond)
	}
	after := &histogram{}
	r.addTo(after)

	w := after.sub(before)
	assert.Equal(t, uint64(100), w.n)
	assert.InEpsilon(t, float64(time.Millisecond), float64(w.quantile(0.99)), 1.0/subBuckets)
	assert.Less(t, w.max, uint64(2*time.Millisecond), "the warmup's max is not the window's")
}

func TestEmptyAndNegative(t *testing.T) {
	assert.Equal(t, time.Duration(0), (&histogram{}).quantile(0.99))
	var r recorder
	r.record(-5) // clocks are monotonic, but be safe
	h := &histogram{}
	r.addTo(h)
	assert.Equal(t, time.Duration(0), h.quantile(0.5))
}

func BenchmarkRecord(b *testing.B) {
	var r recorder
	for i := range b.N {
		r.record(time.Duration(i & 0xFFFFF))
	}
}
