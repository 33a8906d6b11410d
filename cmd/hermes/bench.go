package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/hermes-go/hermes/bench"
	"github.com/hermes-go/hermes/harness"
	"github.com/hermes-go/hermes/protocol"
	"github.com/hermes-go/hermes/sim"
)

func cmdBench(args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "engine" {
		return cmdBenchEngine(args[1:], stdout)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	scenario := fs.String("scenario", "", "scenario file (JSON); or 'hermes bench engine' for the engine benchmark")
	policies := fs.String("policies", "hermes,bsp,asp,ssp,localsgd", "comma-separated policies to compare")
	out := fs.String("out", "", "write results.json, points.csv, plots and report.md into this directory")
	parallel := fs.Int("parallel", 0, "runs at once (0: one per core)")
	valSize := fs.Int("val", 5000, "validation samples carved from the training set")
	localLR := fs.Float64("local-lr", 0, "workers' SGD learning rate for every policy (0: each policy's tuned value)")
	tune := fs.Bool("tune", false, "choose each policy's learning rates by a grid on a separate seed, and print them")
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
	sc, err := sim.LoadScenario(*scenario)
	if err != nil {
		return err
	}
	names := strings.Split(*policies, ",")
	env, err := sim.NewEnv(sc, *valSize)
	if err != nil {
		return err
	}
	if *tune {
		return runTune(env, *st, names, *parallel, stdout, *asJSON)
	}
	hyper := map[string]harness.Hyper{}
	for _, p := range names {
		hyper[p] = hyperFor(fs, st, *localLR, p)
	}
	cfg := bench.ScenarioConfig{Env: env, Policies: names, Settings: *st, Hyper: hyper, Parallel: *parallel,
		OnDone: func(p string, r sim.Result) {
			slog.Info("finished", "policy", p, "reached", r.ReachedTarget, "final_accuracy", r.FinalAccuracy, "virtual_s", int(r.VirtualSeconds), "wall_s", int(r.WallSeconds))
		}}
	slog.Info("bench", "scenario", sc.Name, "policies", *policies, "workers", sc.NumWorkers())
	runs, err := bench.Scenario(cfg)
	if err != nil {
		return err
	}
	if *out != "" {
		if err := bench.WriteReport(*out, sc, runs); err != nil {
			return err
		}
		slog.Info("report written", "dir", *out)
	}
	if *asJSON {
		return printJSON(stdout, bench.Summarize(sc.Name, runs))
	}
	bench.Table(stdout, runs)
	return nil
}

// runTune searches every policy's learning rates on the scenario with a
// seed other than its own, and prints the best per policy as Go and JSON.
func runTune(env *sim.Env, st protocol.Settings, names []string, parallel int, stdout io.Writer, asJSON bool) error {
	seed := env.Scenario.Seed + 1000
	// A candidate that has not reached the target in this much virtual
	// time has lost; without the cap one bad rate could run for hours.
	st.MaxTime = bench.TuneBudget
	best := map[string]bench.Run{}
	for _, p := range names {
		pol, err := protocol.PolicyNamed(p)
		if err != nil {
			return err
		}
		cands := bench.GridFor(pol)
		runs, err := bench.Tune(env, st, p, cands, seed, parallel)
		if err != nil {
			return err
		}
		for _, r := range runs {
			slog.Info("tune", "policy", p, "local_lr", r.Hyper.LocalLR, "server_lr", r.Hyper.ServerLR,
				"reached", r.Result.ReachedTarget, "time_to_target", fmtOpt(r.Result.TimeToTargetS), "best_accuracy", r.Result.BestAccuracy)
			if b, ok := best[p]; !ok || bench.Better(r.Result, b.Result) {
				best[p] = r
			}
		}
	}
	out := map[string]harness.Hyper{}
	for p, r := range best {
		out[p] = r.Hyper
		fmt.Fprintf(os.Stderr, "\t%q: {LocalLR: %g, ServerLR: %g},\n", p, r.Hyper.LocalLR, r.Hyper.ServerLR)
	}
	if asJSON {
		return printJSON(stdout, out)
	}
	fmt.Fprintln(stdout, "tuned learning rates (put them in harness/rates.go):")
	for _, p := range names {
		fmt.Fprintf(stdout, "  %-15s local %g, server %g\n", p, out[p].LocalLR, out[p].ServerLR)
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
	asJSON := fs.Bool("json", false, "print one JSON object as the last line of stdout")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := setThreads(c.Threads); err != nil {
		return err
	}
	r, err := bench.Engine(c)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, r)
	}
	fmt.Fprintf(stdout, "hermes %s batch %d threads %d: %.1f samples/s\n", r.Model, r.Batch, r.Threads, r.SamplesPerSecond)
	if r.PeerSamplesPerSecond > 0 {
		fmt.Fprintf(stdout, "torch  %s batch %d threads %d: %.1f samples/s\nratio hermes/torch: %.3f\n", r.Model, r.Batch, r.Threads, r.PeerSamplesPerSecond, r.Ratio)
	}
	return nil
}
