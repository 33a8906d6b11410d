package protocol

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// TestScripts runs the whole-run scripts in testdata/: a few workers, the
// losses and times their training reports, and the exact actions of server
// and workers in order. Refresh with `go test ./protocol -run Scripts -rewrite`.
//
//	init policy=hermes params=2 train=40 [any settings field=value]
//	register w=1 [mem=BYTES] [at=DUR]
//	train w=1 loss=0.5 time=2s [grad=1] [at=DUR]
//	leave w=1 | tick at=DUR | halt
//	bad w=1 kind=nan|shape|unknown
func TestScripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		var n *network
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			args := map[string]string{}
			for _, a := range d.CmdArgs {
				args[a.Key] = strings.Join(a.Vals, ",")
			}
			if at, ok := args["at"]; ok {
				dur, err := time.ParseDuration(at)
				if err != nil {
					d.Fatalf(t, "at: %v", err)
				}
				n.now = dur
				delete(args, "at")
			}
			w := WorkerID(atoi(args["w"]))
			switch d.Cmd {
			case "init":
				s := Defaults()
				params, train := atoi(args["params"]), atoi(args["train"])
				delete(args, "params")
				delete(args, "train")
				var js []string
				for k, v := range args {
					switch _, err := strconv.ParseFloat(v, 64); {
					case strings.Contains(v, ","):
						v = "[" + v + "]"
					case err != nil && v != "true" && v != "false":
						v = strconv.Quote(v)
					}
					js = append(js, fmt.Sprintf("%q: %s", k, v))
				}
				if err := s.decode([]byte("{" + strings.Join(js, ",") + "}")); err != nil {
					d.Fatalf(t, "settings: %v", err)
				}
				var err error
				if n, err = newNetwork(s, make([]float32, params), train, 1); err != nil {
					return err.Error()
				}
				return "ok"
			case "register":
				if err := n.register(w, int64(atoi(args["mem"]))); err != nil {
					return err.Error()
				}
			case "train":
				dt, _ := time.ParseDuration(args["time"])
				loss, _ := strconv.ParseFloat(args["loss"], 64)
				grad := 1.0
				if g, ok := args["grad"]; ok {
					grad, _ = strconv.ParseFloat(g, 64)
				}
				if err := n.trained(w, loss, dt, float32(grad)); err != nil {
					return err.Error()
				}
			case "leave":
				n.leave(w)
			case "tick":
				n.toServer(Tick{})
			case "halt":
				n.toServer(Halt{Reason: "target accuracy"})
			case "bad":
				u := Update{Report: Report{Worker: w}, Grad: make([]float32, len(n.server.Params()))}
				switch args["kind"] {
				case "nan":
					u.Grad[0] = float32(math.NaN())
				case "shape":
					u.Grad = append(u.Grad, 1)
				case "unknown":
					u.Worker = 99
				}
				n.toServer(u)
				n.logf("ps: still at v%d", n.server.Version())
			default:
				d.Fatalf(t, "unknown command %s", d.Cmd)
			}
			return n.flush()
		})
	})
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
