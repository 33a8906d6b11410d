package cluster

import (
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

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

func saveState(dir string, st psState) error {
	st.Format = checkpointFormat
	return writeAtomic(filepath.Join(dir, checkpointFile), func(w io.Writer) error {
		return gob.NewEncoder(w).Encode(st)
	})
}

func loadState(dir string) (psState, error) {
	path := filepath.Join(dir, checkpointFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return psState{}, fmt.Errorf("resume: no checkpoint in %s (was the run started with this --run-dir?)", dir)
	}
	if err != nil {
		return psState{}, fmt.Errorf("resume: %w", err)
	}
	defer f.Close()
	var st psState
	if err := gob.NewDecoder(f).Decode(&st); err != nil {
		return psState{}, fmt.Errorf("resume: %s: %w", path, err)
	}
	if st.Format != checkpointFormat {
		return psState{}, fmt.Errorf("resume: %s: format %d, this build reads %d", path, st.Format, checkpointFormat)
	}
	return st, nil
}
