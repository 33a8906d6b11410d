package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/hermes-go/hermes/bench"
)

func cmdBench(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "engine" {
		return fmt.Errorf("bench: only 'hermes bench engine' exists yet; scenario benchmarks come with the simulator (issue #5)")
	}
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
	if err := parse(fs, args[1:]); err != nil {
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
