package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHistogramIndex(t *testing.T) {
	t.Parallel()
	// Buckets are contiguous and ordered: each value lies in the bucket
	// whose upper bound is the first at or above it.
	prev := -1
	for _, v := range []uint64{0, 1, 255, 256, 257, 511, 512, 1000, 1 << 20, 1<<20 + 12345, 1 << 40, 1 << 62} {
		i := histIndex(v)
		require.GreaterOrEqual(t, i, prev, "%d", v)
		require.Less(t, i, histBuckets)
		require.GreaterOrEqual(t, histUpper(i), v, "%d", v)
		if i > 0 {
			require.Less(t, histUpper(i-1), v, "%d", v)
		}
		prev = i
	}
	for i := 1; i < histBuckets-1; i++ {
		require.Equal(t, histUpper(i-1)+1, lower(i), "bucket %d", i)
	}
}

// lower returns the smallest value of bucket i.
func lower(i int) uint64 {
	if i == 0 {
		return 0
	}
	return histUpper(i-1) + 1
}

func TestHistogramQuantiles(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		samples func(r *rand.Rand) []time.Duration
	}{
		{"uniform ms", func(r *rand.Rand) []time.Duration {
			s := make([]time.Duration, 10000)
			for i := range s {
				s[i] = time.Duration(r.Int64N(int64(10 * time.Millisecond)))
			}
			return s
		}},
		{"long tail", func(r *rand.Rand) []time.Duration {
			s := make([]time.Duration, 5000)
			for i := range s {
				s[i] = time.Duration(r.ExpFloat64() * float64(time.Millisecond))
			}
			return s
		}},
		{"tiny", func(*rand.Rand) []time.Duration { return []time.Duration{3, 1, 2} }},
		{"one", func(*rand.Rand) []time.Duration { return []time.Duration{time.Second} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := c.samples(rand.New(rand.NewPCG(1, 2)))
			// Recorded into two histograms and merged, as the load does.
			var a, b Histogram
			for i, v := range s {
				if i%2 == 0 {
					a.Record(v)
				} else {
					b.Record(v)
				}
			}
			a.Merge(&b)
			require.Equal(t, uint64(len(s)), a.Count())
			slices.Sort(s)
			for _, q := range []float64{0.5, 0.9, 0.99, 1} {
				exact := s[max(0, int(q*float64(len(s))+0.999999)-1)]
				got := a.Quantile(q)
				require.GreaterOrEqual(t, got, exact, "q%v", q)
				require.LessOrEqual(t, float64(got), float64(exact)*1.01+1, "q%v", q)
			}
		})
	}
	var empty Histogram
	require.Zero(t, empty.Quantile(0.5))
}
