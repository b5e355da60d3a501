package bench

import (
	"math/bits"
	"time"
)

// Histogram records durations in log-linear buckets: exact below 256 ns,
// then 128 buckets per power of two, so any quantile it reports is within
// 1% of the true sample while its memory stays fixed (about 60 KiB) however
// many samples it takes. The zero value is ready to use; it is not safe for
// concurrent use (give each goroutine its own and Merge them).
type Histogram struct {
	counts []uint64
	n      uint64
	max    time.Duration
}

const (
	histSubBits = 7                  // 128 sub-buckets per power of two
	histLinear  = 2 << histSubBits   // values below this are exact
	histBuckets = histLinear + 56<<7 // enough for any positive int64
)

func histIndex(v uint64) int {
	if v < histLinear {
		return int(v)
	}
	e := bits.Len64(v) - (histSubBits + 1) // >= 1
	m := v >> uint(e)                      // in [128, 256)
	return histLinear + (e-1)<<histSubBits + int(m) - 1<<histSubBits
}

// histUpper returns the largest value that falls in bucket i.
func histUpper(i int) uint64 {
	if i < histLinear {
		return uint64(i)
	}
	j := i - histLinear
	e := j>>histSubBits + 1
	m := uint64(j&(1<<histSubBits-1) + 1<<histSubBits)
	return (m+1)<<uint(e) - 1
}

// Record adds one sample; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	if h.counts == nil {
		h.counts = make([]uint64, histBuckets)
	}
	if d < 0 {
		d = 0
	}
	h.counts[histIndex(uint64(d))]++
	h.n++
	h.max = max(h.max, d)
}

// Merge adds every sample of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint64, histBuckets)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Count returns how many samples were recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Quantile returns the q-quantile (0 < q <= 1) of the samples, rounded up to
// its bucket's upper bound and never above the largest sample; 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	if float64(rank) < q*float64(h.n) {
		rank++ // ceil: the smallest value with at least q of the samples at or below it
	}
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(histUpper(i)), h.max)
		}
	}
	return h.max
}
