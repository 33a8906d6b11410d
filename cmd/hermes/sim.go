package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/hermes-go/hermes/protocol"
	"github.com/hermes-go/hermes/sim"
)

func cmdSim(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	st := protocol.Defaults()
	scenario := fs.String("scenario", "", "scenario file (JSON)")
	st.RegisterFlags(fs)
	localLR := fs.Float64("local-lr", 0, "workers' SGD learning rate (0: the policy's tuned value)")
	serverLR := fs.Float64("lr-server", 0, "server learning rate (0: the policy's tuned value)")
	valSize := fs.Int("val", 5000, "validation samples carved from the training set")
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
	h := sim.Tuned[st.Policy]
	if *localLR > 0 {
		h.LocalLR = *localLR
	}
	if *serverLR > 0 {
		h.ServerLR = *serverLR
	}
	env, err := sim.NewEnv(sc, *valSize)
	if err != nil {
		return err
	}
	slog.Info("simulating", "scenario", sc.Name, "policy", st.Policy, "workers", sc.NumWorkers(), "local_lr", h.LocalLR, "server_lr", h.ServerLR)
	res, _, err := sim.Run(env, sim.Options{Settings: st, Hyper: h})
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "%s on %s: reached %v, time to target %s, final accuracy %.4f, %.0f virtual s, %d bytes, %d updates (%s)\n",
		res.Policy, sc.Name, res.ReachedTarget, fmtOpt(res.TimeToTargetS), res.FinalAccuracy, res.VirtualSeconds, res.BytesTotal, res.UpdatesTotal, res.StopReason)
	return nil
}

func fmtOpt(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f s", *v)
}
