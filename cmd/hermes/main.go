// Command hermes trains neural networks across unequal edge devices with the
// Hermes method. It is only wiring: flags in, packages called, results out.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
)

const usage = `hermes: distributed training for unequal edge devices

usage: hermes COMMAND [flags]

commands:
  train    train a model in one process
  eval     evaluate a saved model (safetensors or ONNX)
  export   write a saved model as ONNX, or as a PyTorch state_dict
  bench    compare policies on a scenario; 'bench engine' measures the engine against PyTorch
  sim      simulate a policy on a scenario of unequal devices
  calibrate measure this machine as a scenario device: step and message costs
  ps       parameter server over NATS (embedded unless --nats)
  worker   edge worker: joins a parameter server and trains
  demo     a parameter server and local workers of unequal speeds on real data
  keygen   make an nkey bound to a worker's name (seed to keep, a line for ps --nkey-file)
  loadtest synthetic workers send updates to a parameter server: rate, latency, drops
  replay   serve the dashboard of a finished run from its run dir

'hermes COMMAND -h' lists a command's flags.
`

// errUsage marks errors where the flags were wrong; flag already printed why.
var errUsage = errors.New("usage")

func main() { os.Exit(hermes()) }

// hermes runs the command line and returns the exit code; deferred work
// (the profile) finishes before the exit.
func hermes() int {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	// HERMES_CPUPROFILE=FILE profiles any command; the worker processes of
	// a demo write FILE.PID.
	if path := os.Getenv("HERMES_CPUPROFILE"); path != "" {
		if len(os.Args) > 1 && os.Args[1] == "worker" {
			path += "." + strconv.Itoa(os.Getpid())
		}
		f, err := os.Create(path)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "hermes: HERMES_CPUPROFILE:", err)
			return 1
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	// HERMES_MEMPROFILE=FILE writes a heap profile at exit; its
	// alloc_space shows what a run allocated, and where.
	if path := os.Getenv("HERMES_MEMPROFILE"); path != "" {
		defer func() {
			runtime.GC() // publish the allocations since the last collection
			f, err := os.Create(path)
			if err == nil {
				err = pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "hermes: HERMES_MEMPROFILE:", err)
			}
		}()
	}
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "hermes:", err)
		}
		return 1
	}
	return 0
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, usage)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "train":
		return cmdTrain(rest, stdout)
	case "eval":
		return cmdEval(rest, stdout)
	case "export":
		return cmdExport(rest, stdout)
	case "bench":
		return cmdBench(rest, stdout)
	case "ps":
		return cmdPS(rest, stdout)
	case "worker":
		return cmdWorker(rest, stdout)
	case "demo":
		return cmdDemo(rest, stdout)
	case "sim":
		return cmdSim(rest, stdout)
	case "calibrate":
		return cmdCalibrate(rest, stdout)
	case "keygen":
		return cmdKeygen(rest, stdout)
	case "loadtest":
		return cmdLoadtest(rest, stdout)
	case "replay":
		return cmdReplay(rest, stdout)
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// parse parses flags and turns flag errors into errUsage.
func parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(os.Stderr)
	if err := fs.Parse(args); err != nil {
		return errUsage // flag has printed what was wrong, or the help
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// setThreads bounds how many cores the engine's GEMMs use.
func setThreads(n int) error {
	if n < 0 {
		return fmt.Errorf("threads = %d, want >= 0 (0: all cores)", n)
	}
	if n > 0 {
		runtime.GOMAXPROCS(n)
	}
	return nil
}

// printJSON writes v as the one JSON line that --json promises as the last
// line of stdout.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

// dataFlags are the data-selection flags shared by the commands.
type dataFlags struct{ dataset, train, test string }

func (d *dataFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.dataset, "dataset", "", "named data set: fashion-mnist")
	fs.StringVar(&d.train, "train", "", "training data: FILE.csv, IDX images[,labels] or X.npy,Y.npy")
	fs.StringVar(&d.test, "test", "", "test data, same forms as --train")
}

func (d *dataFlags) name() string {
	if d.dataset != "" {
		return d.dataset
	}
	return strings.Join([]string{d.train, d.test}, ";")
}
