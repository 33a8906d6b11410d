// Package dashboard shows a run as it happens: a live web page, Prometheus
// metrics and a JSON snapshot. All of it is built from the run's events,
// the JSON records the central log (events.jsonl) keeps, so a finished run
// replays into the same page as a live one showed.
package dashboard

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Limits on what a snapshot carries, so that a long run or a large fleet
// neither grows the server's memory nor floods a browser.
const (
	maxPoints      = 500 // accuracy points (a plot is 400 px wide); older ones are thinned
	maxChunkPoints = 100 // chunk-size changes kept per worker
	maxEvents      = 50  // latest events
	maxPending     = 1 << 16
)

// Point is one test measurement of the global model.
type Point struct {
	T        float64 `json:"t"` // seconds since the run started
	Version  int64   `json:"version"`
	Accuracy float64 `json:"accuracy"`
	ValLoss  float64 `json:"val_loss"`
	BytesIn  int64   `json:"bytes_in"`
	BytesOut int64   `json:"bytes_out"`
}

// Worker is what the dashboard knows of one worker.
type Worker struct {
	Name          string  `json:"name"`
	Up            bool    `json:"up"`
	Chunk         int     `json:"chunk"`
	MiniBatch     int     `json:"mini_batch"`
	Major         int64   `json:"major"`
	Minor         int64   `json:"minor"`
	LastLoss      float64 `json:"last_loss"`
	SamplesPerSec float64 `json:"samples_per_second"`
	LastSeen      float64 `json:"last_seen"` // seconds since the run started
	// Chunks is the worker's chunk size over time: [t, samples] pairs.
	Chunks [][2]float64 `json:"chunks"`
}

// Event is a line of the dashboard's event list.
type Event struct {
	T      float64 `json:"t"`
	Kind   string  `json:"kind"` // join, lost, resize, major, rejected, stop
	Worker string  `json:"worker,omitempty"`
	Text   string  `json:"text"`
}

// Snapshot is what the page draws; /api/state serves it as JSON.
type Snapshot struct {
	Policy   string           `json:"policy"`
	Target   float64          `json:"target"`
	Version  int64            `json:"version"`
	Accuracy float64          `json:"accuracy"`
	ValLoss  float64          `json:"val_loss"`
	BytesIn  int64            `json:"bytes_in"`
	BytesOut int64            `json:"bytes_out"`
	Stopped  string           `json:"stopped,omitempty"`
	Points   []Point          `json:"points"`
	Workers  []*Worker        `json:"workers"`
	Events   []Event          `json:"events"`
	Rejected map[string]int64 `json:"rejected"`
}

// State is a run's state as its events tell it. Apply feeds it; it is safe
// for concurrent use.
type State struct {
	mu      sync.Mutex
	start   time.Time
	chunk   int // the run's starting chunk and mini-batch
	mini    int
	snap    Snapshot
	workers map[string]*Worker
	seq     uint64 // bumped by every change
	// onValidation, when set, gets the validation seconds of each
	// global-model change (the metrics' histogram).
	onValidation func(seconds float64)
	pending      []float64 // validation seconds from before a server attached
}

// NewState returns an empty state.
func NewState() *State {
	return &State{workers: map[string]*Worker{}, snap: Snapshot{Rejected: map[string]int64{}}}
}

// record is the part of a log record the dashboard reads.
type record struct {
	Time    time.Time `json:"time"`
	Msg     string    `json:"msg"`
	Node    string    `json:"node"`
	Worker  any       `json:"worker"`
	Reason  string    `json:"reason"`
	Policy  string    `json:"policy"`
	Target  float64   `json:"target"`
	Chunk   int       `json:"chunk"`
	Mini    int       `json:"mini_batch"`
	Version int64     `json:"version"`
	Acc     float64   `json:"test_accuracy"`
	ValLoss float64   `json:"val_loss"`
	ValMs   float64   `json:"validation_ms"`
	In      int64     `json:"bytes_in"`
	Out     int64     `json:"bytes_out"`
	Samples float64   `json:"samples"`
	Loss    float64   `json:"loss"`
	Major   bool      `json:"major"`
	TrainMs float64   `json:"train_ms"`
	From    any       `json:"from"` // a name, or a list of worker ids
}

// Apply takes one event line (a JSON log record). Lines it cannot read or
// does not know are ignored: the log is the run's, not the dashboard's.
func (s *State) Apply(line []byte) {
	var r record
	if json.Unmarshal(line, &r) != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.start.IsZero() {
		s.start = r.Time
	}
	t := r.Time.Sub(s.start).Seconds()
	name, _ := r.Worker.(string)
	switch {
	case r.Node != "ps" && r.Msg == "chunk trained":
		w := s.worker(r.Node)
		if r.Major {
			w.Major++
		} else {
			w.Minor++
		}
		w.LastLoss, w.LastSeen = r.Loss, t
		if r.TrainMs > 0 {
			w.SamplesPerSec = r.Samples / (r.TrainMs / 1000)
		}
		if r.Major {
			s.event(t, "major", r.Node, "major update")
		}
	case r.Node != "ps":
		return
	case r.Msg == "run started":
		s.snap.Policy, s.snap.Target, s.chunk, s.mini = r.Policy, r.Target, r.Chunk, r.Mini
	case r.Msg == "worker joined":
		w := s.worker(name)
		w.Up, w.LastSeen = true, t
		if w.Chunk == 0 {
			w.Chunk, w.MiniBatch = s.chunk, s.mini
			w.Chunks = append(w.Chunks, [2]float64{t, float64(w.Chunk)})
		}
		s.event(t, "join", name, "joined")
	case r.Msg == "worker timed out":
		s.worker(name).Up = false
		s.event(t, "lost", name, "timed out")
	case r.Msg == "resized":
		w := s.worker(name)
		w.Chunk, w.MiniBatch = r.Chunk, r.Mini
		w.Chunks = append(w.Chunks, [2]float64{t, float64(r.Chunk)})
		if len(w.Chunks) > maxChunkPoints {
			w.Chunks = w.Chunks[len(w.Chunks)-maxChunkPoints:]
		}
		s.event(t, "resize", name, "chunk "+strconv.Itoa(r.Chunk)+", mini-batch "+strconv.Itoa(r.Mini))
	case r.Msg == "global model":
		s.snap.ValLoss = r.ValLoss
		switch {
		case r.ValMs <= 0:
		case s.onValidation != nil:
			s.onValidation(r.ValMs / 1000)
		case len(s.pending) < maxPending:
			s.pending = append(s.pending, r.ValMs/1000)
		}
	case r.Msg == "test accuracy":
		s.snap.Version, s.snap.Accuracy, s.snap.BytesIn, s.snap.BytesOut = r.Version, r.Acc, r.In, r.Out
		s.snap.Points = append(s.snap.Points, Point{T: t, Version: r.Version, Accuracy: r.Acc, ValLoss: s.snap.ValLoss, BytesIn: r.In, BytesOut: r.Out})
		if len(s.snap.Points) > maxPoints { // keep every other of the older half
			old := s.snap.Points[:maxPoints/2]
			thin := make([]Point, 0, maxPoints)
			for i := 0; i < len(old); i += 2 {
				thin = append(thin, old[i])
			}
			s.snap.Points = append(thin, s.snap.Points[maxPoints/2:]...)
		}
	case r.Msg == "rejected message":
		s.snap.Rejected[r.Reason]++
		who, _ := r.From.(string)
		s.event(t, "rejected", who, r.Reason)
	case r.Msg == "stop":
		s.snap.Stopped = r.Reason
		s.event(t, "stop", "", r.Reason)
	default:
		return
	}
	s.seq++
}

func (s *State) worker(name string) *Worker {
	w, ok := s.workers[name]
	if !ok {
		w = &Worker{Name: name}
		s.workers[name] = w
	}
	return w
}

func (s *State) event(t float64, kind, worker, text string) {
	s.snap.Events = append(s.snap.Events, Event{T: t, Kind: kind, Worker: worker, Text: text})
	if len(s.snap.Events) > maxEvents {
		s.snap.Events = s.snap.Events[len(s.snap.Events)-maxEvents:]
	}
}

// Snapshot returns a copy of the state and its sequence number, which
// changes whenever the state does.
func (s *State) Snapshot() (Snapshot, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := s.snap
	snap.Points = slices.Clone(s.snap.Points)
	snap.Events = slices.Clone(s.snap.Events)
	snap.Rejected = maps.Clone(s.snap.Rejected)
	for _, name := range slices.Sorted(maps.Keys(s.workers)) {
		w := *s.workers[name]
		w.Chunks = slices.Clone(w.Chunks)
		snap.Workers = append(snap.Workers, &w)
	}
	return snap, s.seq
}
