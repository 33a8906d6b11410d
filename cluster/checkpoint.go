package cluster

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hermes-go/hermes/harness"
	"github.com/hermes-go/hermes/protocol"
)

// checkpointFile is the server's state in its run dir, as gob: it holds
// float32 tensors and NaN losses exactly, and only this program reads it.
const checkpointFile = "checkpoint.gob"

// checkpointFormat changes when psState does; an old file is refused.
const checkpointFormat = 1

// psState is what `hermes ps --resume` needs to continue a run: the
// protocol's state plus the run's counters. Workers are not in it; they
// join again by themselves.
type psState struct {
	Format     int
	Protocol   protocol.Checkpoint
	NextWorker int64
	Summary    Summary
}

// encodeState returns st as the checkpoint file's bytes.
func encodeState(st psState) ([]byte, error) {
	st.Format = checkpointFormat
	var b bytes.Buffer
	err := gob.NewEncoder(&b).Encode(st)
	return b.Bytes(), err
}

// decodeState reads a checkpoint; from names where it came from.
func decodeState(b []byte, from string) (psState, error) {
	var st psState
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&st); err != nil {
		return psState{}, fmt.Errorf("resume: %s: %w", from, err)
	}
	if st.Format != checkpointFormat {
		return psState{}, fmt.Errorf("resume: %s: format %d, this build reads %d", from, st.Format, checkpointFormat)
	}
	return st, nil
}

// readCheckpoint returns the checkpoint file of dir, or nil if there is none.
func readCheckpoint(dir string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, checkpointFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// objectStore keeps a run's checkpoint and final model in a JetStream
// object store, bucket PREFIX-runs. On an external NATS cluster with
// JetStream this outlives the server's machine: `hermes ps --resume` can
// continue the run from another one. The embedded server stores it in the
// run dir.
type objectStore struct {
	store jetstream.ObjectStore
}

// openObjectStore returns nil, and why, where the NATS server has no
// JetStream.
func openObjectStore(nc *nats.Conn, prefix string) (*objectStore, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: prefix + "-runs",
		Description: "hermes checkpoints and final models"})
	if err != nil {
		return nil, err
	}
	return &objectStore{store: st}, nil
}

func (o *objectStore) put(name string, b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := o.store.PutBytes(ctx, name, b)
	return err
}

// get returns the object, or nil if there is none.
func (o *objectStore) get(name string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := o.store.GetBytes(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, nil
	}
	return b, err
}

// openState builds the protocol server, fresh or from the checkpoint: the
// run dir's, or else the JetStream object store's.
func (p *PS) openState() error {
	cfg := p.cfg
	p.validating.v = harness.Validator{Model: p.model, Val: cfg.Val}
	val := &p.validating
	if !cfg.Resume {
		var err error
		p.srv, err = harness.NewServer(cfg.Settings, p.model.Params(), cfg.Train.Len(), val, cfg.Seed)
		return err
	}
	from := filepath.Join(cfg.RunDir, checkpointFile)
	b, err := readCheckpoint(cfg.RunDir)
	if err == nil && b == nil && p.objects != nil {
		from = "JetStream object store " + cfg.Prefix + "-runs"
		b, err = p.objects.get(checkpointFile)
	}
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if b == nil {
		return fmt.Errorf("resume: no checkpoint in %s (was the run started with this --run-dir?)", cfg.RunDir)
	}
	st, err := decodeState(b, from)
	if err != nil {
		return err
	}
	if n := len(st.Protocol.Params); n != len(p.model.Params()) {
		return fmt.Errorf("resume: checkpoint has a model of %d parameters, --model gives %d", n, len(p.model.Params()))
	}
	p.srv, err = harness.RestoreServer(cfg.Settings, st.Protocol, cfg.Train.Len(), val, cfg.Seed)
	if err != nil {
		return fmt.Errorf("resume from %s: %w", from, err)
	}
	p.sum = st.Summary
	p.sum.ResumedFrom = st.Protocol.Version
	p.nextWorker = st.NextWorker
	for reason, n := range st.Summary.Rejected {
		for range n {
			p.rejected.add(reason)
		}
	}
	p.offset = st.Protocol.Now
	for name, ws := range st.Summary.PerWorker {
		p.status[name] = &ws
		p.joined.Store(name, true)
	}
	p.log.Info("resumed", "run_dir", cfg.RunDir, "version", st.Protocol.Version, "elapsed", p.offset.Round(time.Millisecond), "from", from)
	return nil
}

// saveState writes the checkpoint to the run dir and, where there is one,
// to the object store.
func (p *PS) saveState(st psState) error {
	b, err := encodeState(st)
	if err != nil {
		return err
	}
	p.writes.Wait() // after a checkpoint in flight, never before it
	return p.writeState(b)
}

// writeState writes an encoded state, durably: the file and its directory
// are synced before it counts as written.
func (p *PS) writeState(b []byte) error {
	if err := p.rd.writeFile(checkpointFile, b); err != nil {
		return err
	}
	if p.objects != nil {
		if err := p.objects.put(checkpointFile, b); err != nil {
			p.log.Warn("checkpoint to JetStream", "err", err)
		}
	}
	return nil
}

// checkpoint saves the server's state in the run dir. The state is taken
// and encoded on the loop; with wait false it is written off the loop, so
// that a slow disk or JetStream (seconds) never holds up the workers, and
// a checkpoint that finds the last one still being written skips its
// turn. With wait true (interruption) it is written before checkpoint
// returns.
func (p *PS) checkpoint(wait bool) error {
	p.lastSave = time.Now()
	p.step(protocol.Tick{}) // bring the protocol's clock to now
	st := psState{Protocol: p.srv.Checkpoint(), NextWorker: p.nextWorker, Summary: p.summary()}
	if wait {
		if err := p.saveState(st); err != nil {
			return err
		}
		p.log.Info("checkpoint", "version", st.Protocol.Version, "elapsed", st.Protocol.Now.Round(time.Millisecond))
		return nil
	}
	if !p.writing.CompareAndSwap(false, true) {
		return nil
	}
	b, err := encodeState(st)
	if err != nil {
		p.writing.Store(false)
		return err
	}
	p.writes.Add(1)
	go func() {
		defer p.writes.Done()
		defer p.writing.Store(false)
		if err := p.writeState(b); err != nil {
			p.log.Error("checkpoint", "err", err)
			return
		}
		p.log.Info("checkpoint", "version", st.Protocol.Version, "elapsed", st.Protocol.Now.Round(time.Millisecond))
	}()
	return nil
}

func (p *PS) interrupt() (Summary, error) {
	p.sum.StopReason = "interrupted"
	if p.rd == nil {
		return p.summary(), nil
	}
	if err := p.checkpoint(true); err != nil {
		return p.summary(), fmt.Errorf("checkpoint on interruption: %w", err)
	}
	p.log.Info("interrupted; resume with --resume", "run_dir", p.cfg.RunDir)
	return p.summary(), nil
}

// finish saves the final model, the summary and the ended state, and
// archives the run dir.
func (p *PS) finish(sum *Summary) error {
	copy(p.model.Params(), p.srv.Params())
	if p.result != nil {
		copy(p.model.Params(), p.result)
	}
	if err := p.model.Save(p.cfg.RunDir + "/model.safetensors"); err != nil {
		return err
	}
	if err := p.saveState(psState{Protocol: p.srv.Checkpoint(), NextWorker: p.nextWorker, Summary: *sum}); err != nil {
		return err
	}
	if p.objects != nil {
		if b, err := os.ReadFile(filepath.Join(p.cfg.RunDir, "model.safetensors")); err == nil {
			if err := p.objects.put("model.safetensors", b); err != nil {
				p.log.Warn("final model to JetStream", "err", err)
			}
		}
	}
	b, _ := json.MarshalIndent(sum, "", "  ")
	if err := p.rd.writeFile("summary.json", append(b, '\n')); err != nil {
		return err
	}
	arch, err := p.rd.archive()
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	sum.Archive = arch
	return nil
}
