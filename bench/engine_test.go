package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hermes-go/hermes/nn"
)

func TestEngineMeasuresAndComparesWithPeer(t *testing.T) {
	// A stand-in peer that prints what torch_engine.py prints, so the
	// ratio arithmetic and parsing are tested without PyTorch.
	peer := filepath.Join(t.TempDir(), "peer.sh")
	os.WriteFile(peer, []byte("#!/bin/sh\necho \"torch $1 bs=$2 threads=$4: 1000.0 samples/s (16.000 ms/step)\"\n"), 0o755)
	r, err := Engine(EngineConfig{Model: "mlp", Batch: 4, Steps: 20, Threads: 1, Rounds: 1, Peer: peer, Python: "/bin/sh"})
	if err != nil {
		t.Fatal(err)
	}
	if r.SamplesPerSecond <= 0 || r.PeerSamplesPerSecond != 1000 {
		t.Fatalf("result %+v", r)
	}
	if r.Ratio != r.SamplesPerSecond/1000 {
		t.Fatalf("ratio %v, want %v", r.Ratio, r.SamplesPerSecond/1000)
	}
}

func TestEngineRejectsBadConfig(t *testing.T) {
	if _, err := Engine(EngineConfig{Model: "resnet", Batch: 1, Steps: 1, Threads: 1}); err == nil || !strings.Contains(err.Error(), `"resnet"`) {
		t.Fatalf("err = %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.sh")
	os.WriteFile(bad, []byte("#!/bin/sh\necho 'ImportError: no torch'; exit 1\n"), 0o755)
	_, err := Engine(EngineConfig{Model: "mlp", Batch: 1, Steps: 1, Threads: 1, Peer: bad, Python: "/bin/sh"})
	if err == nil || !strings.Contains(err.Error(), "no torch") {
		t.Fatalf("err = %v, want the peer's last line", err)
	}
}

// The peak report lists every GEMM of the step and puts each below the FMA
// peak: a GEMM "faster" than a loop of nothing but FMAs would mean the
// peak or the FLOP count is wrong (a lane count off by two, say).
func TestEnginePeakIsALimit(t *testing.T) {
	r, err := EnginePeak(EngineConfig{Model: "mlp", Batch: 16, Steps: 20, Threads: 1, Rounds: 1})
	if len(nn.FMAPeaks()) == 0 {
		if err == nil || !strings.Contains(err.Error(), "no FMA loop") {
			t.Fatalf("without an FMA loop: err = %v", err)
		}
		t.Skip("no FMA loop on this machine")
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(r.GEMMs) != 8 { // 3 dense layers × 3, less the first one's input gradient
		t.Fatalf("%d GEMMs, want 8: %+v", len(r.GEMMs), r.GEMMs)
	}
	for _, g := range r.GEMMs {
		if !(g.OfPeak > 0 && g.OfPeak < 1.2) {
			t.Errorf("%s (layer %d, %s) at %.2f of the peak %.1f GFLOP/s", g.Shape, g.Layer, g.Pass, g.OfPeak, r.PeakGFLOPS)
		}
	}
	if !(r.StepOfPeak > 0 && r.StepOfPeak < 1.2) {
		t.Errorf("step at %.2f of peak", r.StepOfPeak)
	}
}
