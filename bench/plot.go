package bench

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"slices"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/hermes-go/hermes/sim"
)

type plotFile struct{ file, title string }

// writePlots draws the report's figures, each as PNG and SVG. Time and
// bytes axes are logarithmic: policies differ by orders of magnitude.
func writePlots(dir string, sc *sim.Scenario, prs []PolicyRuns) ([]plotFile, error) {
	var out []plotFile
	save := func(p *plot.Plot, file, title string) error {
		for _, ext := range []string{".png", ".svg"} {
			if err := p.Save(9*vg.Inch, 5*vg.Inch, filepath.Join(dir, file+ext)); err != nil {
				return fmt.Errorf("plot %s: %w", file, err)
			}
		}
		out = append(out, plotFile{file, title})
		return nil
	}
	band := ""
	if len(prs) > 0 && len(prs[0].Runs) > 1 {
		band = " (median over seeds; band: min to max)"
	}
	acc := newPlot("Test accuracy of the global model"+band, "virtual time (s, log)", "test accuracy")
	bytes := newPlot("Communication"+band, "virtual time (s, log)", "cumulative bytes (MB, log)")
	bytes.Legend.Top, bytes.Legend.Left = true, true
	logAxis(&acc.X)
	logAxis(&bytes.X)
	logAxis(&bytes.Y)
	var all []Run
	for _, pr := range prs {
		all = append(all, pr.Runs...)
	}
	// One time grid for all, from the first evaluation of any run; each
	// policy's curve ends with its last run.
	grid := timeGrid(all)
	for i, pr := range prs {
		end := 0.0
		for _, r := range pr.Runs {
			end = max(end, r.Trace.Points[len(r.Trace.Points)-1].T)
		}
		grid := grid[:sort.SearchFloat64s(grid, end*(1+1e-9))]
		if err := addBand(acc, pr.Policy, grid, pr.Runs, func(p sim.Point) float64 { return p.Accuracy }, i); err != nil {
			return nil, err
		}
		if err := addBand(bytes, pr.Policy, grid, pr.Runs, func(p sim.Point) float64 { return float64(p.Bytes) / 1e6 }, i); err != nil {
			return nil, err
		}
	}
	target := plotter.NewFunction(func(float64) float64 { return sc.TargetAccuracy })
	target.Color, target.Dashes = color.Gray{Y: 120}, []vg.Length{vg.Points(4), vg.Points(4)}
	acc.Add(target)
	acc.Legend.Add(fmt.Sprintf("target %.2f", sc.TargetAccuracy), target)
	if err := save(acc, "accuracy", "Test accuracy vs virtual time"); err != nil {
		return nil, err
	}
	if err := save(bytes, "bytes", "Cumulative bytes vs virtual time"); err != nil {
		return nil, err
	}
	hermes := findRun(prs, "hermes")
	if hermes == nil {
		return out, nil
	}
	names := workerNames(sc)
	chunks := newPlot("Allocator: chunk size per worker (hermes)", "virtual time (s)", "chunk size (samples)")
	mbs := newPlot("Allocator: mini-batch per worker (hermes)", "virtual time (s)", "mini-batch size")
	perWorker := map[int][2]plotter.XYs{}
	for _, sp := range hermes.Trace.Sizes {
		xy := perWorker[sp.Worker]
		xy[0] = append(xy[0], plotter.XY{X: sp.T, Y: float64(sp.Chunk)})
		xy[1] = append(xy[1], plotter.XY{X: sp.T, Y: float64(sp.MiniBatch)})
		perWorker[sp.Worker] = xy
	}
	for w := 0; w < len(names) && w < 16; w++ {
		xy, ok := perWorker[w]
		if !ok {
			continue
		}
		if err := addStep(chunks, names[w], xy[0], w); err != nil {
			return nil, err
		}
		if err := addStep(mbs, names[w], xy[1], w); err != nil {
			return nil, err
		}
	}
	if err := save(chunks, "chunks", "Chunk size per worker over time (the allocator at work)"); err != nil {
		return nil, err
	}
	if err := save(mbs, "minibatch", "Mini-batch per worker over time"); err != nil {
		return nil, err
	}
	// The gate of the worker that made the most decisions.
	counts := map[int]int{}
	best := -1
	for _, g := range hermes.Trace.Gates {
		counts[g.Worker]++
		if best < 0 || counts[g.Worker] > counts[best] || (counts[g.Worker] == counts[best] && g.Worker < best) {
			best = g.Worker
		}
	}
	if best < 0 {
		return out, nil
	}
	// hermes's gate decides on the gain over the global model
	// (protocol.Gate.ObserveGain), not on the paper's z-score.
	const stat = "gain over the global model"
	gate := newPlot(fmt.Sprintf("Update gate of %s (hermes)", names[best]), "virtual time (s)", stat)
	var z, thres, major plotter.XYs
	for _, g := range hermes.Trace.Gates {
		if g.Worker != best {
			continue
		}
		z = append(z, plotter.XY{X: g.T, Y: g.Z})
		thres = append(thres, plotter.XY{X: g.T, Y: g.Thres})
		if g.Major {
			major = append(major, plotter.XY{X: g.T, Y: g.Z})
		}
	}
	if err := addLine(gate, stat, z, 0); err != nil {
		return nil, err
	}
	if err := addLine(gate, "threshold", thres, 1); err != nil {
		return nil, err
	}
	if len(major) > 0 {
		sc, err := plotter.NewScatter(major)
		if err != nil {
			return nil, err
		}
		sc.Shape, sc.Radius, sc.Color = draw.CircleGlyph{}, vg.Points(4), color.RGBA{R: 200, A: 255}
		gate.Add(sc)
		gate.Legend.Add("major update", sc)
	}
	if err := save(gate, "gate", "The gate's statistic ("+stat+") vs its threshold for one worker, major updates marked"); err != nil {
		return nil, err
	}
	return out, nil
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, x, y
	// Bottom right: accuracy curves rise to the top, so the legend would
	// hide them there.
	p.Legend.Top = false
	p.Legend.Left = false
	p.Add(plotter.NewGrid())
	return p
}

func addLine(p *plot.Plot, name string, xys plotter.XYs, i int) error {
	_, err := addLineStyled(p, name, xys, i)
	return err
}

// addStep draws a value that holds until the next point, such as a chunk
// size between assignments.
func addStep(p *plot.Plot, name string, xys plotter.XYs, i int) error {
	l, err := addLineStyled(p, name, xys, i)
	if l != nil {
		l.StepStyle = plotter.PostStep
	}
	return err
}

func addLineStyled(p *plot.Plot, name string, xys plotter.XYs, i int) (*plotter.Line, error) {
	if len(xys) == 0 {
		return nil, nil
	}
	l, err := plotter.NewLine(xys)
	if err != nil {
		return nil, fmt.Errorf("plot %s: %w", name, err)
	}
	l.Color = plotutil.Color(i)
	l.Dashes = plotutil.Dashes(i / len(plotutil.SoftColors))
	l.Width = vg.Points(1.5)
	p.Add(l)
	p.Legend.Add(name, l)
	return l, nil
}

// findRun returns the first seed's run of policy: the allocator and gate
// plots show one run, not a median.
func findRun(prs []PolicyRuns, policy string) *Run {
	for i := range prs {
		if prs[i].Policy == policy && len(prs[i].Runs) > 0 {
			return &prs[i].Runs[0]
		}
	}
	return nil
}

func logAxis(a *plot.Axis) {
	a.Scale = plot.LogScale{}
	a.Tick.Marker = plot.LogTicks{Prec: -1}
}

// gridPoints is how many times a median curve is drawn at.
const gridPoints = 200

// timeGrid returns log-spaced times from the runs' first positive point to
// their last.
func timeGrid(runs []Run) []float64 {
	lo, hi := math.Inf(1), 0.0
	for _, r := range runs {
		for _, p := range r.Trace.Points {
			if p.T > 0 {
				lo, hi = min(lo, p.T), max(hi, p.T)
			}
		}
	}
	if !(hi > 0) {
		return nil
	}
	if hi <= lo {
		return []float64{lo}
	}
	grid := make([]float64, gridPoints)
	for i := range grid {
		grid[i] = lo * math.Pow(hi/lo, float64(i)/float64(gridPoints-1))
	}
	return grid
}

// stepAt returns a run's value at time t: the value of its last point at
// or before t, which holds until the next (and after the run's end).
func stepAt(pts []sim.Point, t float64, val func(sim.Point) float64) float64 {
	i := sort.Search(len(pts), func(i int) bool { return pts[i].T > t })
	if i == 0 {
		return val(pts[0])
	}
	return val(pts[i-1])
}

// addBand draws the median over runs of val on grid and, for several
// runs, a band from the lowest to the highest. Non-positive values are
// left out on a log axis.
func addBand(p *plot.Plot, name string, grid []float64, runs []Run, val func(sim.Point) float64, i int) error {
	_, logY := p.Y.Scale.(plot.LogScale)
	var med, lo, hi plotter.XYs
	vs := make([]float64, len(runs))
	for _, t := range grid {
		for k, r := range runs {
			vs[k] = stepAt(r.Trace.Points, t, val)
		}
		m, l, h := Median(vs), slices.Min(vs), slices.Max(vs)
		if logY && !(l > 0) {
			continue
		}
		med = append(med, plotter.XY{X: t, Y: m})
		lo, hi = append(lo, plotter.XY{X: t, Y: l}), append(hi, plotter.XY{X: t, Y: h})
	}
	if len(runs) > 1 && len(med) > 1 {
		poly := append(slices.Clone(lo), reversed(hi)...)
		b, err := plotter.NewPolygon(poly)
		if err != nil {
			return fmt.Errorf("plot %s: %w", name, err)
		}
		r, g, bl, _ := plotutil.Color(i).RGBA()
		b.Color = color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(bl >> 8), A: 50}
		b.LineStyle.Width = 0
		p.Add(b)
	}
	return addLine(p, name, med, i)
}

func reversed(xys plotter.XYs) plotter.XYs {
	out := slices.Clone(xys)
	slices.Reverse(out)
	return out
}

// workerNames labels worker ids as the scenario's groups number them.
func workerNames(sc *sim.Scenario) []string {
	var names []string
	for _, g := range sc.Workers {
		for i := range g.Count {
			names = append(names, fmt.Sprintf("w%d %s#%d", len(names), g.Name, i+1))
		}
	}
	return names
}
