package sim

import (
	"testing"

	"github.com/hermes-go/hermes/harness"
)

// A policy that compresses chunks prices a chunk by its compressed size
// (about 0.6 of the images' bytes on Fashion-MNIST) and charges the
// codec's time to the server and the worker, in proportion to their
// speeds; one that does not pays the raw bytes and no codec time.
func TestCompressedChunksCost(t *testing.T) {
	env := tinyEnv(t)
	if env.TrainBytes == nil {
		t.Fatal("the fixture's images are not kept as bytes")
	}
	idx := make([]int32, 100)
	for i := range idx {
		idx[i] = int32(3 * i)
	}
	costOf := func(policy string, w *simWorker) (int64, Time, Time) {
		s, err := newSimulation(env, Options{Settings: tinySettings(policy), Hyper: harness.Hyper{LocalLR: 0.05, ServerLR: 0.01}})
		if err != nil {
			t.Fatal(err)
		}
		return s.chunkCost(w, idx)
	}
	fast, slow := &simWorker{dev: Device{GFLOPS: 10}}, &simWorker{dev: Device{GFLOPS: 1}}
	raw, rawEnc, rawDec := costOf("hermes-raw", fast)
	if raw != int64(len(idx))*env.Train.WireBytes() || rawEnc != 0 || rawDec != 0 {
		t.Fatalf("raw chunk: %d bytes, %v to encode, %v to decode", raw, rawEnc, rawDec)
	}
	n, enc, dec := costOf("hermes", fast)
	if ratio := float64(n) / float64(raw); ratio > 0.75 || ratio < 0.3 {
		t.Fatalf("compressed chunk: %d bytes of %d raw (%.2f)", n, raw, ratio)
	}
	if enc <= 0 || dec <= 0 {
		t.Fatalf("codec free: %v to encode, %v to decode", enc, dec)
	}
	if _, _, slowDec := costOf("hermes", slow); slowDec < 10*dec-10 || slowDec > 10*dec+10 { // nanoseconds rounded
		t.Fatalf("decoding on a device 10 times slower: %v, against %v", slowDec, dec)
	}
}
