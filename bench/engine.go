// Package bench measures Hermes-Go against its peers: the training engine
// against PyTorch on the same model and batch, in the same run.
package bench

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hermes-go/hermes/nn"
)

// EngineConfig is one engine benchmark: the work of
// `torch_engine.py MODEL BATCH STEPS THREADS`.
type EngineConfig struct {
	Model   string
	Batch   int
	Steps   int
	Threads int
	Rounds  int    // alternate ours and the peer this many times, keep each one's best
	Peer    string // path of torch_engine.py; empty: do not run the peer
	Python  string
}

// EngineResult is what `hermes bench engine --json` prints.
type EngineResult struct {
	Model                string  `json:"model"`
	Batch                int     `json:"batch"`
	Threads              int     `json:"threads"`
	KernelISA            string  `json:"kernel_isa"`
	SamplesPerSecond     float64 `json:"samples_per_second"`
	PeerSamplesPerSecond float64 `json:"peer_samples_per_second,omitempty"`
	Ratio                float64 `json:"ratio,omitempty"`
}

// Engine runs the benchmark. The caller sets GOMAXPROCS to c.Threads.
func Engine(c EngineConfig) (EngineResult, error) {
	m, err := engineModel(c)
	if err != nil {
		return EngineResult{}, err
	}
	x, y := randomBatch(c.Batch)
	opt := &nn.SGD{Rate: 0.01}
	step := func() {
		m.Backprop(x, y, c.Batch)
		opt.Step(m.Params(), m.Grads())
	}
	res := EngineResult{Model: c.Model, Batch: c.Batch, Threads: c.Threads, KernelISA: nn.KernelISA()}
	for r := 0; r < max(c.Rounds, 1); r++ {
		for range 5 {
			step()
		}
		t0 := time.Now()
		for range c.Steps {
			step()
		}
		res.SamplesPerSecond = max(res.SamplesPerSecond, float64(c.Batch*c.Steps)/time.Since(t0).Seconds())
		if c.Peer != "" {
			sps, err := runPeer(c)
			if err != nil {
				return res, err
			}
			res.PeerSamplesPerSecond = max(res.PeerSamplesPerSecond, sps)
		}
	}
	if res.PeerSamplesPerSecond > 0 {
		res.Ratio = res.SamplesPerSecond / res.PeerSamplesPerSecond
	}
	return res, nil
}

// engineModel checks c and builds its model, initialized.
func engineModel(c EngineConfig) (*nn.Model, error) {
	if c.Model != "mlp" && c.Model != "cnn" {
		return nil, fmt.Errorf("bench engine: model %q, want mlp or cnn (the peer's models)", c.Model)
	}
	if c.Batch < 1 || c.Steps < 1 || c.Threads < 1 {
		return nil, fmt.Errorf("bench engine: batch, steps and threads must be >= 1")
	}
	spec, _ := nn.Builtin(c.Model, 10)
	m, err := nn.Build(spec, nn.Shape{1, 28, 28}, 10)
	if err != nil {
		return nil, err
	}
	m.Init(1)
	return m, nil
}

var peerRate = regexp.MustCompile(`([0-9.]+) samples/s`)

func runPeer(c EngineConfig) (float64, error) {
	cmd := exec.Command(c.Python, c.Peer, c.Model, strconv.Itoa(c.Batch), strconv.Itoa(c.Steps), strconv.Itoa(c.Threads))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("peer %s: %w: %s", c.Peer, err, lastLine(out))
	}
	m := peerRate.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("peer %s: no samples/s in its output: %s", c.Peer, lastLine(out))
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

func lastLine(b []byte) string {
	s := strings.TrimRight(string(b), "\n")
	return s[strings.LastIndex(s, "\n")+1:]
}

// randomBatch returns n seeded random Fashion-MNIST-shaped samples and
// labels: the engine's speed does not depend on the values.
func randomBatch(n int) ([]float32, []int32) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, n*784)
	for i := range x {
		x[i] = rng.Float32()
	}
	y := make([]int32, n)
	for i := range y {
		y[i] = int32(rng.IntN(10))
	}
	return x, y
}
