package bench

import (
	"math"
	"testing"
)

// The bound ships one pass through the narrowest cut and trains it once
// on the fleet's arithmetic: here the devices' links together (10 + 2·50
// Mbit/s) are wider than the server's (100), which is the cut.
func TestBoundIsOnePassThroughTheNarrowestCut(t *testing.T) {
	env := tinyEnv(t)
	b, err := BoundOf(env)
	if err != nil {
		t.Fatal(err)
	}
	if b.Samples != 800 || b.Bytes != 800*785 {
		t.Fatalf("bound of %d samples, %d bytes; want 800 and %d", b.Samples, b.Bytes, 800*785)
	}
	if want := 800 * 785 * 8 / 100e6; math.Abs(b.LinkSeconds-want) > 1e-12 {
		t.Fatalf("link %v s, want %v (the server's 100 Mbit/s)", b.LinkSeconds, want)
	}
	// Logistic regression, 784 inputs, 10 classes: 3 × 2·784·10 FLOPs to
	// train a sample once; the fleet has 2.05 GFLOP/s.
	if want := 800 * 3 * 2 * 784 * 10 / 2.05e9; math.Abs(b.ComputeSeconds-want) > 1e-9*want {
		t.Fatalf("compute %v s, want %v", b.ComputeSeconds, want)
	}
	if b.Seconds != max(b.LinkSeconds, b.ComputeSeconds) {
		t.Fatalf("bound %v s, want the larger of link and compute", b.Seconds)
	}
	// With the server's link ten times wider, the devices' (110 Mbit/s)
	// are the cut.
	env.Scenario.PS.BandwidthMbps = 1000
	if b2, _ := BoundOf(env); math.Abs(b2.LinkSeconds-800*785*8/110e6) > 1e-12 {
		t.Fatalf("link %v s with a gigabit server, want the devices' 110 Mbit/s", b2.LinkSeconds)
	}
}
