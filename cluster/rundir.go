package cluster

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// runDir is where a parameter server keeps a run:
//
//	checkpoint.gob      the server's state, rewritten as the run goes and on SIGTERM
//	model.safetensors   the final global model (`hermes eval` reads it)
//	summary.json        the run's summary
//	events.jsonl        every node's events, one JSON object a line, with "node"
//	nodes/NODE.jsonl    the events of one node (ps, or a worker's name)
//	jetstream/          the embedded NATS server's JetStream store (not archived)
//
// Files are opened for appending, so a resumed run adds to its logs. At
// the end of a run the directory is archived to DIR.tar.gz beside it.
type runDir struct {
	path    string
	mu      sync.Mutex
	central *os.File
	nodes   map[string]*os.File
	tee     func(line []byte) // also gets every central-log line
}

// maxLogLine bounds a worker's log line: network input, and a line is an
// event, not a payload.
const maxLogLine = 16 << 10

func openRunDir(path string) (*runDir, error) {
	if err := os.MkdirAll(filepath.Join(path, "nodes"), 0o755); err != nil {
		return nil, fmt.Errorf("run dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(path, "events.jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("run dir: %w", err)
	}
	return &runDir{path: path, central: f, nodes: map[string]*os.File{}}, nil
}

// write appends one event line of node to the central log and to the
// node's own. The line must be a JSON object; node must be a valid name.
func (d *runDir) write(node string, line []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	f, ok := d.nodes[node]
	if !ok {
		var err error
		f, err = os.OpenFile(filepath.Join(d.path, "nodes", node+".jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		d.nodes[node] = f
	}
	if _, err := f.Write(line); err != nil {
		return err
	}
	_, err := d.central.Write(line)
	if d.tee != nil {
		d.tee(line)
	}
	return err
}

// nodeLine checks a log line a worker sent and returns it with its "node"
// field set to the worker's name, whatever the worker claimed.
func nodeLine(node string, raw []byte) ([]byte, error) {
	if len(raw) > maxLogLine {
		return nil, fmt.Errorf("log line of %d bytes, at most %d", len(raw), maxLogLine)
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, fmt.Errorf("log line is not a JSON object: %w", err)
	}
	ev["node"] = node
	b, err := json.Marshal(ev)
	return append(b, '\n'), err
}

// nodeWriter is an io.Writer for a slog.JSONHandler: each Write is one
// record of node.
type nodeWriter struct {
	d    *runDir
	node string
}

func (w nodeWriter) Write(p []byte) (int, error) {
	if err := w.d.write(w.node, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (d *runDir) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.central.Close()
	for _, f := range d.nodes {
		f.Close()
	}
	clear(d.nodes)
}

// writeFile writes name in the run dir atomically: readers see the old
// file or the new one, never half of one.
func (d *runDir) writeFile(name string, b []byte) error {
	return writeAtomic(filepath.Join(d.path, name), func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

func writeAtomic(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// The rename is durable once the directory is.
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}

// archive writes the run dir as DIR.tar.gz beside it and returns its path.
func (d *runDir) archive() (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, f := range append([]*os.File{d.central}, slices.Collect(maps.Values(d.nodes))...) {
		f.Sync()
	}
	out := filepath.Clean(d.path) + ".tar.gz"
	base := filepath.Base(filepath.Clean(d.path))
	err := writeAtomic(out, func(w io.Writer) error {
		zw := gzip.NewWriter(w)
		tw := tar.NewWriter(zw)
		err := filepath.WalkDir(d.path, func(path string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() && e.Name() == "jetstream" {
				return fs.SkipDir // the embedded server's store: live files, and a copy of what is here
			}
			if err != nil || e.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(d.path, path)
			if err := tw.WriteHeader(&tar.Header{Name: filepath.ToSlash(filepath.Join(base, rel)), Mode: 0o644, Size: int64(len(b))}); err != nil {
				return err
			}
			_, err = io.Copy(tw, bytes.NewReader(b))
			return err
		})
		if err != nil {
			return err
		}
		if err := tw.Close(); err != nil {
			return err
		}
		return zw.Close()
	})
	return out, err
}

// PrepareRunDir returns the run dir for a run of command cmd: dir, or a
// new one under runs/ named by the command and the time. It refuses to
// start a new run over a checkpointed one, which would overwrite it, and
// to resume without a dir.
func PrepareRunDir(dir, cmd string, resume bool) (string, error) {
	if resume && dir == "" {
		return "", fmt.Errorf("--resume needs --run-dir, the directory of the run to continue")
	}
	if dir == "" {
		dir = filepath.Join("runs", cmd+"-"+time.Now().Format("20060102-150405"))
	}
	if _, err := os.Stat(filepath.Join(dir, checkpointFile)); err == nil && !resume {
		return "", fmt.Errorf("--run-dir %s holds a run already: add --resume to continue it, or choose another directory", dir)
	}
	return dir, nil
}
