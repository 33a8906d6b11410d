package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/hermes-go/hermes/harness"
	"github.com/hermes-go/hermes/sim"
)

// Ratio is a policy's median cost relative to Hermes's (> 1: Hermes is
// better); nil where either median missed the target.
type Ratio struct {
	Time, Bytes *float64
}

// Ratios returns, for every policy, its median time and bytes to target
// divided by those of policy base.
func Ratios(prs []PolicyRuns, base string) []Ratio {
	var ref *Stats
	for i := range prs {
		if prs[i].Policy == base {
			ref = &prs[i].Stats
		}
	}
	out := make([]Ratio, len(prs))
	if ref == nil || math.IsInf(ref.Time.Median, 0) {
		return out
	}
	for i, pr := range prs {
		if math.IsInf(pr.Stats.Time.Median, 0) {
			continue
		}
		t := pr.Stats.Time.Median / ref.Time.Median
		b := pr.Stats.Bytes.Median / ref.Bytes.Median
		out[i] = Ratio{&t, &b}
	}
	return out
}

// Table writes the comparison as a Markdown table: per policy, the median
// over seeds and, in brackets, its 95% bootstrap interval.
func Table(w io.Writer, prs []PolicyRuns) {
	ratios := Ratios(prs, "hermes")
	fmt.Fprintln(w, "| policy | reached | time to target (s) | MB to target | updates to target | final acc | best acc | time / hermes | bytes / hermes | hyperparameters |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
	for i, pr := range prs {
		st := pr.Stats
		fmt.Fprintf(w, "| %s | %d/%d | %s | %s | %s | %.4f | %.4f | %s | %s | %s |\n",
			pr.Policy, st.Reached, st.Runs, fmtInterval(st.Time, 1), fmtInterval(scaleInterval(st.Bytes, 1e-6), 1),
			fmtNum(st.Updates, 0), st.FinalAccuracy, st.BestAccuracy,
			optF(ratios[i].Time, "%.2fx"), optF(ratios[i].Bytes, "%.2fx"), fmtHyper(pr.Hyper))
	}
}

// fmtInterval writes a median and its interval ("7.2 [6.9, 8.0]"); a
// single run has no interval.
func fmtInterval(iv Interval, prec int) string {
	if iv.Lo == iv.Hi && iv.Lo == iv.Median {
		return fmtNum(iv.Median, prec)
	}
	return fmt.Sprintf("%s [%s, %s]", fmtNum(iv.Median, prec), fmtNum(iv.Lo, prec), fmtNum(iv.Hi, prec))
}

func scaleInterval(iv Interval, k float64) Interval {
	return Interval{iv.Median * k, iv.Lo * k, iv.Hi * k}
}

// fmtNum writes a figure; a missed target (+Inf) is "miss".
func fmtNum(v float64, prec int) string {
	switch {
	case math.IsInf(v, 1):
		return "miss"
	case math.IsNaN(v):
		return "-"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

func fmtHyper(h harness.Hyper) string {
	s := fmt.Sprintf("local %g, server %g", h.LocalLR, h.ServerLR)
	switch {
	case h.Epochs == 1:
		s += ", 1 epoch"
	case h.Epochs > 1:
		s += fmt.Sprintf(", %d epochs", h.Epochs)
	}
	if h.MiniBatch > 0 {
		s += fmt.Sprintf(", mb %d", h.MiniBatch)
	}
	return s
}

func optF(v *float64, format string) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(format, *v)
}

// Summary is what `hermes bench --json` prints and results.json holds.
type Summary struct {
	Scenario  string          `json:"scenario"`
	Seeds     int             `json:"seeds"`
	FirstSeed uint64          `json:"first_seed"`
	Bound     *Bound          `json:"bound,omitempty"`
	Results   []PolicySummary `json:"results"`
}

// PolicySummary is one policy over the seeds. Figures are medians over the
// runs; a missed target counts as infinitely slow, and a median or bound
// that is a miss is null.
type PolicySummary struct {
	Policy          string        `json:"policy"`
	Runs            int           `json:"runs"`
	Reached         int           `json:"reached"`
	ReachedTarget   bool          `json:"reached_target"` // the median run reached it
	TimeToTargetS   jsonNum       `json:"time_to_target_s"`
	TimeToTargetCI  [2]jsonNum    `json:"time_to_target_ci"`
	BytesToTarget   jsonNum       `json:"bytes_to_target"`
	BytesToTargetCI [2]jsonNum    `json:"bytes_to_target_ci"`
	UpdatesToTarget jsonNum       `json:"updates_to_target"`
	FinalAccuracy   float64       `json:"final_accuracy"`
	BestAccuracy    float64       `json:"best_accuracy"`
	VirtualSeconds  float64       `json:"virtual_seconds"`
	WallSeconds     float64       `json:"wall_seconds"` // summed over the runs
	BytesTotal      float64       `json:"bytes_total"`
	UpdatesTotal    float64       `json:"updates_total"`
	Hyper           harness.Hyper `json:"hyper"`
	PerSeed         []SeedResult  `json:"per_seed"`
}

// SeedResult is one run of a policy.
type SeedResult struct {
	Seed uint64 `json:"seed"`
	sim.Result
}

// SummarizeAll collects the results of the policies' runs, with the
// scenario's physical bound when known.
func SummarizeAll(scenario string, bound *Bound, prs []PolicyRuns) Summary {
	s := Summary{Scenario: scenario, Bound: bound}
	for _, pr := range prs {
		st := pr.Stats
		ps := PolicySummary{Policy: pr.Policy, Runs: st.Runs, Reached: st.Reached, ReachedTarget: !math.IsInf(st.Time.Median, 0),
			TimeToTargetS: jsonNum(st.Time.Median), TimeToTargetCI: st.Time.ci(),
			BytesToTarget: jsonNum(st.Bytes.Median), BytesToTargetCI: st.Bytes.ci(), UpdatesToTarget: jsonNum(st.Updates),
			FinalAccuracy: st.FinalAccuracy, BestAccuracy: st.BestAccuracy, VirtualSeconds: st.VirtualSeconds, Hyper: pr.Hyper}
		var bt, ut []float64
		for _, r := range pr.Runs {
			ps.WallSeconds += r.Result.WallSeconds
			bt, ut = append(bt, float64(r.Result.BytesTotal)), append(ut, float64(r.Result.UpdatesTotal))
			ps.PerSeed = append(ps.PerSeed, SeedResult{Seed: r.Seed, Result: r.Result})
		}
		ps.BytesTotal, ps.UpdatesTotal = Median(bt), Median(ut)
		if len(pr.Runs) > 0 {
			s.Seeds, s.FirstSeed = len(pr.Runs), pr.Runs[0].Seed
		}
		s.Results = append(s.Results, ps)
	}
	return s
}

// WriteReport writes results.json, points.csv, the plots (PNG and SVG),
// report.md and the self-contained report.html into dir.
func WriteReport(dir string, sc *sim.Scenario, bound Bound, runs []PolicyRuns) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	b, err := json.MarshalIndent(SummarizeAll(sc.Name, &bound, runs), "", " ")
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "results.json"), func(w io.Writer) error { _, err := w.Write(append(b, '\n')); return err }); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "points.csv"), func(w io.Writer) error { return writePoints(w, runs) }); err != nil {
		return err
	}
	plots, err := writePlots(dir, sc, runs)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "report.html"), func(w io.Writer) error { return writeHTML(w, dir, sc, runs, plots) }); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "report.md"), func(w io.Writer) error {
		fmt.Fprintf(w, "# %s\n\n%s\n\nTarget: %.2f test accuracy; budget %.0f virtual s; %s; %d workers.\n\n",
			sc.Name, sc.Description, sc.TargetAccuracy, sc.TimeBudgetS, seedsLine(runs), sc.NumWorkers())
		Table(w, runs)
		fmt.Fprintln(w)
		WriteBound(w, bound, runs)
		fmt.Fprintf(w, "\n%s\n", methodNote)
		for _, p := range plots {
			fmt.Fprintf(w, "\n## %s\n\n![%s](%s.png)\n", p.title, p.title, p.file)
		}
		return nil
	})
}

// writeFile writes through a temporary file and a rename, so a report from
// an earlier run is never left half-overwritten.
func writeFile(path string, fill func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o644); err != nil { // CreateTemp's 0600 is for secrets
		tmp.Close()
		return fmt.Errorf("report: %w", err)
	}
	if err := fill(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}

// methodNote says how the figures of a report were made.
const methodNote = "Figures are medians over the seeds with 95% bootstrap intervals in brackets; a run that missed the target counts as infinitely slow (\"miss\"). Times are virtual seconds: compute is FLOPs / device GFLOP/s plus the device's measured per-step and per-message costs; every link carries one transfer at a time per direction at its own bandwidth, and a message arrives when both links on its way have carried it, plus their latencies. Bytes count every payload both ways (models, updates, data chunks, control). Ratios are each policy's median time and bytes to target over Hermes's."

func seedsLine(prs []PolicyRuns) string {
	if len(prs) == 0 || len(prs[0].Runs) == 0 {
		return "no runs"
	}
	rs := prs[0].Runs
	if len(rs) == 1 {
		return fmt.Sprintf("seed %d", rs[0].Seed)
	}
	return fmt.Sprintf("%d seeds, %d to %d", len(rs), rs[0].Seed, rs[len(rs)-1].Seed)
}

func writePoints(w io.Writer, prs []PolicyRuns) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"policy", "seed", "virtual_s", "test_accuracy", "test_loss", "bytes", "updates"})
	for _, pr := range prs {
		for _, r := range pr.Runs {
			for _, p := range r.Trace.Points {
				cw.Write([]string{pr.Policy, strconv.FormatUint(r.Seed, 10), f(p.T), f(p.Accuracy), f(p.Loss),
					strconv.FormatInt(p.Bytes, 10), strconv.FormatInt(p.Updates, 10)})
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

func f(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
