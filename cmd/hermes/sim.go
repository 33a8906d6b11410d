package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/hermes-go/hermes/harness"
	"github.com/hermes-go/hermes/protocol"
	"github.com/hermes-go/hermes/sim"
)

func cmdSim(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	scenario := fs.String("scenario", "", "scenario file (JSON)")
	st, err := settingsFlags(fs, args)
	if err != nil {
		return err
	}
	fs.StringVar(&st.Policy, "policy", st.Policy, "training policy: "+strings.Join(protocol.PolicyNames(), ", "))
	localLR := fs.Float64("local-lr", 0, "workers' SGD learning rate (0: the policy's tuned value)")
	valSize := fs.Int("val", 5000, "validation samples carved from the training set")
	seed := fs.Uint64("seed", 0, "seed of the run (0: the scenario's)")
	asJSON := fs.Bool("json", false, "print one JSON object as the last line of stdout")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *scenario == "" {
		return fmt.Errorf("sim: --scenario is required")
	}
	sc, err := sim.LoadScenario(*scenario)
	if err != nil {
		return err
	}
	if err := st.Validate(); err != nil {
		return err
	}
	h := hyperFor(fs, st, *localLR, st.Policy)
	env, err := sim.NewEnv(sc, *valSize)
	if err != nil {
		return err
	}
	slog.Info("simulating", "scenario", sc.Name, "policy", st.Policy, "workers", sc.NumWorkers(), "local_lr", h.LocalLR, "server_lr", h.ServerLR)
	res, _, err := sim.Run(env, sim.Options{Settings: *st, Hyper: h, Seed: *seed})
	if err != nil {
		return err
	}
	slog.Info("done", "events", res.Events, "events_per_s", int(float64(res.Events)/res.WallSeconds), "peak_rss_mb", peakRSSMB())
	if *asJSON {
		return printJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "%s on %s: reached %v, time to target %s, final accuracy %.4f, %.0f virtual s, %d bytes, %d updates (%s)\n",
		res.Policy, sc.Name, res.ReachedTarget, fmtOpt(res.TimeToTargetS), res.FinalAccuracy, res.VirtualSeconds, res.BytesTotal, res.UpdatesTotal, res.StopReason)
	return nil
}

// hyperFor returns a policy's tuned hyperparameters, overridden by
// --local-lr, and by --server-lr, --local-epochs and --mini-batch when
// given.
func hyperFor(fs *flag.FlagSet, st *protocol.Settings, localLR float64, policy string) harness.Hyper {
	o := harness.Hyper{LocalLR: localLR}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "server-lr":
			o.ServerLR = st.ServerLR
		case "local-epochs":
			o.Epochs = st.Epochs
		case "mini-batch":
			o.MiniBatch = st.MiniBatch
		}
	})
	return harness.Rates(policy, o)
}

func fmtOpt(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f s", *v)
}
