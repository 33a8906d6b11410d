package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
