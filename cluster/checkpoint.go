package cluster

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
