package cluster

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hermes-go/hermes/protocol"
	"github.com/hermes-go/hermes/wire"
)

// poisoner is a worker's transport that rewrites every update the worker
// sends, in turn scaled by 1e6, sign-flipped, and replaced by random
// values: an admitted worker gone bad. It ignores the gate, as a bad
// worker would: a report on a chunk goes out as an update of random
// values, on the last model the worker received, so the poison comes
// every chunk, not only when the worker's gate would have let it. It
// lives here, in test code, not in the shipped CLI.
type poisoner struct {
	Transport
	rng *rand.Rand
	n   int

	mu      sync.Mutex
	version int64 // of the last model received
	size    int   // its parameters; 0 before the first
}

// Subscribe watches the models the worker receives.
func (p *poisoner) Subscribe(pattern string, h func(Msg)) (func() error, error) {
	return p.Transport.Subscribe(pattern, func(m Msg) {
		if msg, err := wire.Decode(m.Data); err == nil {
			if model, ok := msg.(wire.Model); ok {
				p.mu.Lock()
				p.version, p.size = model.Version, len(model.Params)
				p.mu.Unlock()
			}
		}
		h(m)
	})
}

func (p *poisoner) Publish(subject string, data []byte) error {
	if !strings.HasPrefix(subject, "hermes.up.") {
		return p.Transport.Publish(subject, data)
	}
	m, err := wire.Decode(data)
	if err != nil {
		return p.Transport.Publish(subject, data)
	}
	var u protocol.Update
	switch m := m.(type) {
	case protocol.Update:
		u = m
	case protocol.Report:
		p.mu.Lock()
		u = protocol.Update{Report: m, Base: p.version, Grad: make([]float32, p.size)}
		p.mu.Unlock()
		u.Decision.Major = true
		for i := range u.Grad {
			u.Grad[i] = float32(p.rng.NormFloat64())
		}
	default:
		return p.Transport.Publish(subject, data)
	}
	g := make([]float32, len(u.Grad))
	for i, v := range u.Grad {
		switch p.n % 3 {
		case 0:
			g[i] = v * 1e6
		case 1:
			g[i] = -v
		default:
			g[i] = float32(p.rng.NormFloat64() * 1e6)
		}
	}
	p.n++
	u.Grad = g
	b, err := wire.Encode(nil, u, wire.FP32)
	if err != nil {
		return err
	}
	return p.Transport.Publish(subject, b)
}

// One worker of four, the fastest, poisons every update it sends. With the defences
// (the defaults) the run reaches its target and the poison is counted by
// reason; with them off, under ASP, which applies every update as it
// comes, the same run never gets there: the defences are measured, not
// assumed.
func TestPoisonedWorker(t *testing.T) {
	for _, c := range []struct {
		policy   string
		defended bool
	}{{"asp", true}, {"asp", false}, {"hermes", true}} {
		t.Run(c.policy+map[bool]string{true: "-defended", false: "-open"}[c.defended], func(t *testing.T) {
			mem := newFixtureNet()
			ps := startFixturePS(t, func(cfg *PSConfig) {
				cfg.Settings.Policy, cfg.Settings.MinWorkers, cfg.Target = c.policy, 4, 0.78
				// No convergence stop: a run ends at its target or its
				// budget.
				cfg.Settings.MaxTime, cfg.Settings.Patience = 5*time.Second, 1<<20
				if c.defended {
					cfg.Settings.MaxTime = 20 * time.Second // room for the race detector
				}
				if c.policy == "asp" {
					cfg.LocalLR, cfg.Settings.ServerLR = 0.05, 0.2
				}
				if !c.defended {
					cfg.Settings.NormBound, cfg.Settings.RejectWorse = 0, 0
				}
				mem.server(cfg)
			})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for _, name := range []string{"a", "b", "c", "bad"} {
				// The honest workers are three times slower: the poison
				// comes first, and often.
				w := mem.worker(WorkerConfig{Name: name, Memory: 1 << 30, Cores: 1, Seed: 1, Slowdown: 3, Log: quietLog})
				if name == "bad" {
					w.Slowdown = 1
					w.Transport = &poisoner{Transport: w.Transport, rng: rand.New(rand.NewPCG(7, 7))}
				}
				go RunWorker(ctx, w)
			}
			sum, err := ps.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("reached %v (%s) at %.4f (best %.4f) in %.1f s, %d updates; rejected %v", sum.ReachedTarget, sum.StopReason, sum.FinalAccuracy, sum.BestAccuracy, sum.WallSeconds, sum.UpdatesTotal, sum.Rejected)
			if c.defended && (!sum.ReachedTarget || sum.Rejected[protocol.DiscardNorm] == 0) {
				t.Fatalf("with the defences: reached %v, rejected %v", sum.ReachedTarget, sum.Rejected)
			}
			if !c.defended && sum.ReachedTarget {
				t.Fatalf("without the defences the poisoned run reached its target: the test does not measure them")
			}
		})
	}
}
