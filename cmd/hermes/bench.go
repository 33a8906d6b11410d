package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"

	"github.com/hermes-go/hermes/bench"
	"github.com/hermes-go/hermes/harness"
	"github.com/hermes-go/hermes/nn"
	"github.com/hermes-go/hermes/protocol"
	"github.com/hermes-go/hermes/sim"
)

func cmdBench(args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "engine" {
		return cmdBenchEngine(args[1:], stdout)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	scenario := fs.String("scenario", "", "scenario file (JSON); or 'hermes bench engine' for the engine benchmark")
	policies := fs.String("policies", "hermes,localsgd,fedbuff,fedasync,asp,ssp,bsp", "comma-separated policies to compare")
	out := fs.String("out", "", "write results.json, points.csv, plots, report.md and report.html into this directory")
	parallel := fs.Int("parallel", 0, "runs at once (0: one per core)")
	valSize := fs.Int("val", 5000, "validation samples carved from the training set")
	localLR := fs.Float64("local-lr", 0, "workers' SGD learning rate for every policy (0: each policy's tuned value)")
	seeds := fs.Int("seeds", 1, "seeds per policy: the first seed and the ones after it")
	seed := fs.Uint64("seed", 0, "first seed (0: the scenario's)")
	tune := fs.Bool("tune", false, "search every tuned policy's grid on the tuning seeds, and print the best points")
	write := fs.String("write", "", "with --tune: write the table there (harness/tuned.json is the one the binary embeds)")
	asJSON := fs.Bool("json", false, "print one JSON object as the last line of stdout")
	st, err := settingsFlags(fs, args)
	if err != nil {
		return err
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *scenario == "" {
		return errors.New("bench: --scenario is required (or use 'hermes bench engine')")
	}
	if *seeds < 1 {
		return fmt.Errorf("bench: --seeds %d: want at least 1", *seeds)
	}
	if *write != "" && !*tune {
		return errors.New("bench: --write goes with --tune")
	}
	sc, err := sim.LoadScenario(*scenario)
	if err != nil {
		return err
	}
	names := strings.Split(*policies, ",")
	for _, p := range names {
		if _, err := protocol.PolicyNamed(p); err != nil {
			return fmt.Errorf("bench: --policies: %w", err)
		}
	}
	env, err := sim.NewEnv(sc, *valSize)
	if err != nil {
		return err
	}
	if *tune {
		return runTune(env, *st, names, *parallel, *write, stdout, *asJSON)
	}
	hyper := map[string]harness.Hyper{}
	for _, p := range names {
		hyper[p] = hyperFor(fs, st, *localLR, p)
	}
	total := len(names) * *seeds
	bar := newBar(!*asJSON, int64(total), "runs")
	cfg := bench.ScenarioConfig{Env: env, Policies: names, Settings: *st, Hyper: hyper, Parallel: *parallel, Seed: *seed, Seeds: *seeds,
		OnDone: func(p string, r sim.Result) {
			if bar != nil {
				bar.Add(1)
			}
			slog.Debug("finished", "policy", p, "reached", r.ReachedTarget, "final_accuracy", r.FinalAccuracy, "virtual_s", int(r.VirtualSeconds), "wall_s", int(r.WallSeconds))
		}}
	slog.Info("bench", "scenario", sc.Name, "policies", *policies, "workers", sc.NumWorkers(), "seeds", *seeds)
	runs, err := bench.Scenario(cfg)
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		return err
	}
	bound, err := bench.BoundOf(env)
	if err != nil {
		return err
	}
	if *out != "" {
		if err := bench.WriteReport(*out, sc, bound, runs); err != nil {
			return err
		}
		slog.Info("report written", "dir", *out)
	}
	if *asJSON {
		return printJSON(stdout, bench.SummarizeAll(sc.Name, &bound, runs))
	}
	bench.Table(stdout, runs)
	fmt.Fprintln(stdout)
	bench.WriteBound(stdout, bound, runs)
	return nil
}

// runTune searches every policy's grid on the tuning seeds and prints the
// best point of each; with write, it writes them as the table the binary
// embeds.
func runTune(env *sim.Env, st protocol.Settings, names []string, parallel int, write string, stdout io.Writer, asJSON bool) error {
	var tuned []string
	for _, p := range names {
		if _, ok := bench.Grids[p]; ok {
			tuned = append(tuned, p)
		} else {
			slog.Info("not tuned: takes hermes's values", "policy", p)
		}
	}
	table := harness.TunedTable{
		Commands:  []string{"hermes bench --scenario " + env.Scenario.Name + " --tune --policies " + strings.Join(tuned, ",")},
		Scenarios: []string{env.Scenario.Name}, Seeds: bench.TuneSeeds, Policies: map[string]harness.Hyper{},
	}
	for _, p := range tuned {
		res, err := bench.Tune(env, st, p, bench.TuneSeeds, parallel)
		if err != nil {
			return err
		}
		for _, r := range res {
			slog.Info("tune", "policy", p, "hyper", r.Hyper, "reached", r.Stats.Reached, "median_time_s", r.Stats.Time.Median, "best_accuracy", r.Stats.BestAccuracy)
		}
		best := res[0]
		table.Policies[p] = best.Hyper
		if edges := bench.OnEdge(p, best.Hyper); len(edges) > 0 {
			slog.Warn("tuned value on the grid's edge: widen the grid", "policy", p, "axes", edges)
		}
	}
	if write != "" {
		if err := bench.WriteTuned(write, table); err != nil {
			return err
		}
		slog.Info("tuned table written", "file", write)
	}
	if asJSON {
		return printJSON(stdout, table)
	}
	fmt.Fprintf(stdout, "tuned on %s, seeds %v (median over seeds):\n", env.Scenario.Name, bench.TuneSeeds)
	for _, p := range tuned {
		fmt.Fprintf(stdout, "  %-10s %+v\n", p, table.Policies[p])
	}
	return nil
}

func cmdBenchEngine(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench engine", flag.ContinueOnError)
	var c bench.EngineConfig
	fs.StringVar(&c.Model, "model", "mlp", "mlp or cnn (the peer's models)")
	fs.IntVar(&c.Batch, "batch", 16, "mini-batch size")
	fs.IntVar(&c.Steps, "steps", 500, "timed training steps (after 5 warm-up steps)")
	fs.IntVar(&c.Threads, "threads", 1, "cores to use")
	fs.StringVar(&c.Peer, "peer", "", "also run the PyTorch peer script (torch_engine.py) and report the ratio")
	fs.IntVar(&c.Rounds, "rounds", 2, "alternate hermes and the peer this many times, keep each one's best")
	fs.StringVar(&c.Python, "python", "/usr/bin/python3", "python interpreter with torch, for --peer")
	isa := fs.String("isa", "", "GEMM kernel to use, one of "+strings.Join(nn.KernelISAs(), ", ")+" (default: the first, the fastest)")
	peak := fs.Bool("peak", false, "measure the core's FMA peak and each GEMM of the training step against it (not with --peer)")
	asJSON := fs.Bool("json", false, "print one JSON object as the last line of stdout")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := setThreads(c.Threads); err != nil {
		return err
	}
	if *isa != "" {
		if err := nn.UseKernelISA(*isa); err != nil {
			return fmt.Errorf("bench engine: --isa: %w", err)
		}
	}
	if *peak {
		if c.Peer != "" {
			return errors.New("bench engine: --peak and --peer measure different things; run them one at a time")
		}
		return benchPeak(c, *asJSON, stdout)
	}
	r, err := bench.Engine(c)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, r)
	}
	fmt.Fprintf(stdout, "hermes %s batch %d threads %d (%s): %.1f samples/s\n", r.Model, r.Batch, r.Threads, r.KernelISA, r.SamplesPerSecond)
	if r.PeerSamplesPerSecond > 0 {
		fmt.Fprintf(stdout, "torch  %s batch %d threads %d: %.1f samples/s\nratio hermes/torch: %.3f\n", r.Model, r.Batch, r.Threads, r.PeerSamplesPerSecond, r.Ratio)
	}
	return nil
}

func benchPeak(c bench.EngineConfig, asJSON bool, stdout io.Writer) error {
	r, err := bench.EnginePeak(c)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(stdout, r)
	}
	fmt.Fprintf(stdout, "CPU: %s; GEMM kernel: %s; threads %d\n", cpuName(), r.KernelISA, r.Threads)
	for _, p := range r.Peaks {
		fmt.Fprintf(stdout, "FMA peak per core, %s (%d lanes): %.1f GFLOP/s\n", p.ISA, p.Lanes, p.GFLOPS)
	}
	fmt.Fprintf(stdout, "fractions below are of %.1f GFLOP/s (the best peak x %d threads)\n\n", r.PeakGFLOPS, r.Threads)
	fmt.Fprintf(stdout, "%-5s %-13s %-9s %-20s %8s %8s %7s\n", "layer", "type", "pass", "GEMM (m×n×k, op)", "MFLOP", "GFLOP/s", "of peak")
	for _, g := range r.GEMMs {
		fmt.Fprintf(stdout, "%-5d %-13s %-9s %-20s %8.2f %8.1f %6.0f%%\n", g.Layer, g.Type, g.Pass, g.Shape, g.FLOPs()/1e6, g.GFLOPS, 100*g.OfPeak)
	}
	fmt.Fprintf(stdout, "\n%s batch %d training step: %.1f samples/s, %.1f GFLOP/s of GEMM arithmetic over the whole step, %.0f%% of peak\n",
		r.Model, r.Batch, r.SamplesPerSecond, r.StepGFLOPS, 100*r.StepOfPeak)
	return nil
}

// cpuName is the model name /proc/cpuinfo gives, or GOARCH.
func cpuName() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}
