package cluster

import (
	"github.com/hermes-go/hermes/data"
	"github.com/hermes-go/hermes/protocol"
	"github.com/hermes-go/hermes/wire"
)

func shape32(s []int) []int32 {
	out := make([]int32, len(s))
	for i, d := range s {
		out[i] = int32(d)
	}
	return out
}

// assign sends a chunk's samples, split so that each message fits the
// transport's limit, and then its work order, by the packer.
func (p *PS) assign(a protocol.Assign) {
	idx := make([]int, len(a.Work.Chunk.Indices))
	for i, v := range a.Work.Chunk.Indices {
		idx[i] = int(v)
	}
	train := p.cfg.Train
	n, size := len(idx), train.SampleSize()
	y := make([]int32, n)
	var x []float32
	var raw []uint8
	if p.trainBytes != nil {
		raw = make([]uint8, n*size)
		for j, i := range idx {
			copy(raw[j*size:], p.trainBytes[i*size:(i+1)*size])
			y[j] = train.Y[i]
		}
	} else {
		x = make([]float32, n*size)
		train.Gather(idx, x, y)
	}
	shape := shape32(train.Shape)
	per := max(1, (p.tr.MaxPayload()-4096)/(4*size+4))
	msgs := make([]any, 0, (n+per-1)/per+1)
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		d := wire.Data{ChunkID: a.Work.Chunk.ID, Offset: int64(lo), Total: int64(n), Shape: shape, Y: y[lo:hi]}
		if raw != nil {
			d.Bytes, d.Scale, d.Mean, d.Std = raw[lo*size:hi*size], data.ByteScale, p.cfg.Norm.Mean, p.cfg.Norm.Std
			d.Compressed = p.srv.Policy().CompressChunks
		} else {
			d.X = x[lo*size : hi*size]
		}
		msgs = append(msgs, d)
	}
	name := p.names[a.To]
	p.pack.send(packJob{subject: p.subj.toWorker(name, int64(a.To)), worker: name, msgs: append(msgs, a.Work)})
	if st, ok := p.status[p.names[a.To]]; ok {
		st.Chunk, st.MiniBatch = len(idx), a.Work.MiniBatch
	}
}
