package bench

import (
	"fmt"
	"image/color"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/hermes-go/hermes/sim"
)

type plotFile struct{ file, title string }

// writePlots draws the report's figures, each as PNG and SVG.
func writePlots(dir string, sc *sim.Scenario, runs []Run) ([]plotFile, error) {
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
	acc := newPlot("Test accuracy of the global model", "virtual time (s)", "test accuracy")
	bytes := newPlot("Communication", "virtual time (s)", "cumulative bytes (MB)")
	bytes.Legend.Top, bytes.Legend.Left = true, true
	for i, r := range runs {
		var a, b plotter.XYs
		for _, p := range r.Trace.Points {
			a = append(a, plotter.XY{X: p.T, Y: p.Accuracy})
			b = append(b, plotter.XY{X: p.T, Y: float64(p.Bytes) / 1e6})
		}
		if err := addLine(acc, r.Result.Policy, a, i); err != nil {
			return nil, err
		}
		if err := addLine(bytes, r.Result.Policy, b, i); err != nil {
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
	hermes := findRun(runs, "hermes")
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
	gate := newPlot(fmt.Sprintf("Update gate of %s (hermes)", names[best]), "virtual time (s)", "z-score of the test loss")
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
	if err := addLine(gate, "z-score", z, 0); err != nil {
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
	if err := save(gate, "gate", "z-score vs threshold of one worker, major updates marked"); err != nil {
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

func findRun(runs []Run, policy string) *Run {
	for i := range runs {
		if runs[i].Result.Policy == policy {
			return &runs[i]
		}
	}
	return nil
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
