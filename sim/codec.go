package sim

import (
	"time"

	"github.com/hermes-go/hermes/wire"
)

// The chunk codec's speed on one core of the machine it was measured on
// (AMD EPYC; wire.BenchmarkCompressChunk, Fashion-MNIST images), and that
// core's speed in the simulator's unit (hermes calibrate fits 151 GFLOP/s
// to its MLP steps; scenarios/demo-4.json). A device compresses and
// decompresses in proportion to its GFLOP/s. That overprices the codec on
// ARM boards, whose byte-wise code runs far closer to an x86 core's than
// their floating point does: a pessimistic price for compression.
const (
	codecHostGFLOPS     = 151
	compressMBps        = 180
	decompressMBps      = 1100
	compressedLabelSize = 1 // a label's bytes on the wire, as data.Dataset.WireBytes counts them
)

// codecTime is how long a device of gflops takes to run a codec of
// mbps on the measuring core over n raw bytes.
func codecTime(n int, mbps, gflops float64) Time {
	return Time(float64(n) / (mbps * 1e6 * gflops / codecHostGFLOPS) * float64(time.Second))
}

// chunkCost returns the bytes a chunk of the training set takes on the wire
// to w and the CPU time the server spends compressing it and w
// decompressing it: none when the policy sends chunks raw or the samples
// are not bytes. The size is that of the very block the cluster sends
// (wire.Compress over the chunk's images), so it follows the data.
func (s *simulation) chunkCost(w *simWorker, idx []int32) (n int64, encode, decode Time) {
	if !s.server.Policy().CompressChunks || s.env.TrainBytes == nil {
		return int64(len(idx)) * s.env.Train.WireBytes(), 0, 0
	}
	size := s.env.Train.SampleSize()
	raw := s.rawChunk[:0]
	for _, i := range idx {
		raw = append(raw, s.env.TrainBytes[int(i)*size:(int(i)+1)*size]...)
	}
	s.packed = wire.Compress(s.packed[:0], raw)
	s.rawChunk = raw
	n = int64(len(s.packed)) + int64(len(idx))*compressedLabelSize
	return n, codecTime(len(raw), compressMBps, s.sc.PS.GFLOPS), codecTime(len(raw), decompressMBps, w.dev.GFLOPS)
}
