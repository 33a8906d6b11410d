package wire

import (
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// MaxDecompressed bounds what one compressed sample block may decode to:
// 64 MiB, NATS's largest payload. A sender splits a chunk so that each
// message's samples would fit the transport uncompressed, so no honest
// block is larger, and a small message cannot make a worker allocate
// more (a zstd frame of a few bytes can claim gigabytes).
const MaxDecompressed = 64 << 20

// Chunks are zstd-compressed at its fastest level: Fashion-MNIST's images
// shrink to 0.60 of their bytes, at about 180 MB/s to compress and 1.2 GB/s
// to decompress on one core of an AMD EPYC (BenchmarkCompressChunk). The
// better levels gain 1% to 2% for a third of the speed.
var (
	codecOnce sync.Once
	encoder   *zstd.Encoder
	decoder   *zstd.Decoder
)

func codecs() {
	codecOnce.Do(func() {
		var err error
		// EncodeAll and DecodeAll are safe for concurrent use; one
		// goroutine each per call.
		encoder, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err != nil {
			panic(err) // only bad options fail
		}
		decoder, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(MaxDecompressed))
		if err != nil {
			panic(err)
		}
	})
}

// Compress appends the compressed form of raw to dst, as Data messages
// carry samples whose Compressed is set. Drivers that only need a chunk's
// size on the wire (the simulator) call it too, so that both price the
// same bytes.
func Compress(dst, raw []byte) []byte {
	codecs()
	return encoder.EncodeAll(raw, dst)
}

// decompress returns the n bytes that block decodes to, or an error if it
// decodes to anything else or is not a zstd frame.
func decompress(block []byte, n int) ([]byte, error) {
	if n > MaxDecompressed {
		return nil, fmt.Errorf("compressed samples of %d bytes, at most %d", n, MaxDecompressed)
	}
	codecs()
	out, err := decoder.DecodeAll(block, make([]byte, 0, n))
	if err != nil {
		return nil, fmt.Errorf("compressed samples: %w", err)
	}
	if len(out) != n {
		return nil, fmt.Errorf("compressed samples decode to %d bytes, message says %d", len(out), n)
	}
	return out, nil
}
