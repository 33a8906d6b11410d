package bench

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
)

// Interval is a median over seeds and its 95% bootstrap interval. A run
// that missed the target counts as infinitely slow (and costly), so a
// median or bound that lands on a miss is +Inf, written as JSON null.
type Interval struct {
	Median, Lo, Hi float64
}

// Stats sums up one policy's runs over seeds.
type Stats struct {
	Runs, Reached int
	Time, Bytes   Interval
	// MeanTime is the mean time to target, +Inf if any run missed: it
	// breaks ties between equal medians in tuning.
	MeanTime float64
	// Medians over the runs; updates to target counts a miss as +Inf.
	Updates, FinalAccuracy, BestAccuracy, VirtualSeconds float64
}

// bootstrapResamples is how many resamples an interval is drawn from.
const bootstrapResamples = 2000

// Summarize computes a policy's Stats from its runs (one per seed).
func Summarize(runs []Run) Stats {
	s := Stats{Runs: len(runs)}
	var times, bytes, updates, final, best, virt []float64
	for _, r := range runs {
		res := r.Result
		t, b, u := math.Inf(1), math.Inf(1), math.Inf(1)
		if res.ReachedTarget {
			s.Reached++
			t, b, u = *res.TimeToTargetS, float64(*res.BytesToTarget), float64(*res.UpdatesToTarget)
		}
		times, bytes, updates = append(times, t), append(bytes, b), append(updates, u)
		final, best, virt = append(final, res.FinalAccuracy), append(best, res.BestAccuracy), append(virt, res.VirtualSeconds)
	}
	s.Time, s.Bytes = Bootstrap(times, 1), Bootstrap(bytes, 2)
	for _, t := range times {
		s.MeanTime += t / float64(len(times))
	}
	s.Updates, s.FinalAccuracy, s.BestAccuracy, s.VirtualSeconds = Median(updates), Median(final), Median(best), Median(virt)
	return s
}

// Median returns the median of v (the mean of the middle two for an even
// count; +Inf if either is); NaN for none.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Bootstrap returns v's median and the percentile interval of the medians
// of bootstrapResamples resamples of v, drawn from a generator seeded with
// seed, so the same values always give the same interval.
func Bootstrap(v []float64, seed uint64) Interval {
	iv := Interval{Median: Median(v), Lo: math.NaN(), Hi: math.NaN()}
	if len(v) == 0 {
		return iv
	}
	rng := rand.New(rand.NewPCG(seed, 0x626f6f74)) // "boot"
	meds := make([]float64, bootstrapResamples)
	sample := make([]float64, len(v))
	for i := range meds {
		for j := range sample {
			sample[j] = v[rng.IntN(len(v))]
		}
		meds[i] = Median(sample)
	}
	slices.Sort(meds)
	iv.Lo = meds[int(0.025*float64(len(meds)))]
	iv.Hi = meds[int(math.Ceil(0.975*float64(len(meds))))-1]
	return iv
}

// jsonNum is a float64 written as JSON null when it is not finite.
type jsonNum float64

func (f jsonNum) MarshalJSON() ([]byte, error) {
	if math.IsInf(float64(f), 0) || math.IsNaN(float64(f)) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(f))
}

func (iv Interval) ci() [2]jsonNum { return [2]jsonNum{jsonNum(iv.Lo), jsonNum(iv.Hi)} }
