package cluster

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hermes-go/hermes/data"
	"github.com/hermes-go/hermes/nn"
	"github.com/hermes-go/hermes/protocol"
)

const fixture = "../testdata/fmnist-1k-images-idx3-ubyte.gz"

// An embedded NATS on loopback, a server and three workers in this
// process: the run reaches a stated accuracy on the fixture.
func TestEndToEndEmbedded(t *testing.T) {
	trainSet, test, _, err := data.Open("", fixture, fixture)
	if err != nil {
		t.Fatal(err)
	}
	val, rest, err := trainSet.Split(200, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := nn.Builtin("logreg", 10)
	st := protocol.Defaults()
	st.Chunk, st.MinChunk, st.Epochs, st.MinWorkers = 100, 10, 2, 3
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ps, err := StartPS(PSConfig{Settings: st, LocalLR: 0.05, Train: rest, Val: val, Test: test, Spec: spec,
		Seed: 1, Target: 0.75, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i, name := range []string{"a", "b", "c"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- RunWorker(ctx, WorkerConfig{URL: ps.URL(), Name: name, Memory: 1 << 30, Cores: 1,
				Slowdown: float64(1 + i), Seed: 1, Log: log})
		}()
	}
	sum, err := ps.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if !sum.ReachedTarget || sum.FinalAccuracy < 0.75 || sum.StopReason != "target accuracy" {
		t.Fatalf("summary %+v", sum)
	}
	if sum.Workers != 3 || sum.UpdatesTotal == 0 || sum.BytesTotal == 0 {
		t.Fatalf("summary %+v", sum)
	}
}
