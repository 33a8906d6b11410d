package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hermes-go/hermes/sim"
)

// Ratio is a baseline's cost relative to Hermes's (> 1: Hermes is better).
type Ratio struct {
	Time, Bytes *float64
}

// Ratios returns, for every run, its time and bytes to target divided by
// those of the run of policy base; nil where either did not reach the target.
func Ratios(runs []Run, base string) []Ratio {
	var ref *sim.Result
	for i := range runs {
		if runs[i].Result.Policy == base {
			ref = &runs[i].Result
		}
	}
	out := make([]Ratio, len(runs))
	if ref == nil || !ref.ReachedTarget {
		return out
	}
	for i, r := range runs {
		if !r.Result.ReachedTarget {
			continue
		}
		t := *r.Result.TimeToTargetS / *ref.TimeToTargetS
		b := float64(*r.Result.BytesToTarget) / float64(*ref.BytesToTarget)
		out[i] = Ratio{&t, &b}
	}
	return out
}

// Table writes the comparison as a Markdown table.
func Table(w io.Writer, runs []Run) {
	ratios := Ratios(runs, "hermes")
	fmt.Fprintln(w, "| policy | reached | time to target (s) | bytes to target | updates to target | final acc | best acc | virtual s | time / hermes | bytes / hermes | local lr | server lr | stop |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
	for i, r := range runs {
		res := r.Result
		fmt.Fprintf(w, "| %s | %v | %s | %s | %s | %.4f | %.4f | %.0f | %s | %s | %g | %g | %s |\n",
			res.Policy, res.ReachedTarget, optF(res.TimeToTargetS, "%.1f"), optI(res.BytesToTarget), optI(res.UpdatesToTarget),
			res.FinalAccuracy, res.BestAccuracy, res.VirtualSeconds, optF(ratios[i].Time, "%.2fx"), optF(ratios[i].Bytes, "%.2fx"),
			r.Hyper.LocalLR, r.Hyper.ServerLR, res.StopReason)
	}
}

func optF(v *float64, format string) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(format, *v)
}

func optI(v *int64) string {
	if v == nil {
		return "-"
	}
	return humanBytes(*v)
}

func humanBytes(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Summary is what `hermes bench --json` prints and results.json holds.
type Summary struct {
	Scenario string       `json:"scenario"`
	Results  []sim.Result `json:"results"`
}

// Summarize collects the results of runs.
func Summarize(scenario string, runs []Run) Summary {
	s := Summary{Scenario: scenario}
	for _, r := range runs {
		s.Results = append(s.Results, r.Result)
	}
	return s
}

// WriteReport writes results.json, points.csv, the plots (PNG and SVG),
// report.md and the self-contained report.html into dir.
func WriteReport(dir string, sc *sim.Scenario, runs []Run) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	b, err := json.MarshalIndent(Summarize(sc.Name, runs), "", " ")
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
		fmt.Fprintf(w, "# %s\n\n%s\n\nTarget: %.2f test accuracy; budget %.0f virtual s; seed %d; %d workers.\n\n",
			sc.Name, sc.Description, sc.TargetAccuracy, sc.TimeBudgetS, sc.Seed, sc.NumWorkers())
		Table(w, runs)
		fmt.Fprintln(w, "\nTimes are virtual seconds: compute is FLOPs / device GFLOP/s; every link carries one transfer at a time per direction at its own bandwidth, and a message arrives when both links on its way have carried it, plus their latencies. Bytes count every payload both ways (models, updates, data chunks, control). Ratios are each policy's time and bytes to target over Hermes's.")
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

func writePoints(w io.Writer, runs []Run) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"policy", "virtual_s", "test_accuracy", "test_loss", "bytes", "updates"})
	for _, r := range runs {
		for _, p := range r.Trace.Points {
			cw.Write([]string{r.Result.Policy, f(p.T), f(p.Accuracy), f(p.Loss),
				strconv.FormatInt(p.Bytes, 10), strconv.FormatInt(p.Updates, 10)})
		}
	}
	cw.Flush()
	return cw.Error()
}

func f(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
