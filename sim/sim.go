// Package sim is the discrete-event driver of the protocol state machines:
// many virtual devices on one machine, a virtual clock, and real training
// with the nn engine on real data, so accuracy is real and only time is
// simulated. Compute time is the FLOPs of the work done divided by the
// device's speed. Every link, the server's and each device's, carries one
// transfer at a time per direction at its bandwidth; a message arrives when
// both links on its way have carried it, plus their latencies, so the
// server's model sends queue behind each other. The server's own work
// (validation passes) costs virtual time on its device.
package sim

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"time"

	"github.com/hermes-go/hermes/data"
	"github.com/hermes-go/hermes/harness"
	"github.com/hermes-go/hermes/nn"
	"github.com/hermes-go/hermes/protocol"
	"github.com/hermes-go/hermes/train"
	"github.com/hermes-go/hermes/wire"
)

// Time is virtual time.
type Time = protocol.Time

// headerBytes is charged for every message on top of its payload.
const headerBytes = 64

// Env is what the policies of one scenario share, read-only: the data,
// split into training, validation (carved from the training data, never
// given to workers) and test sets, and the model spec.
type Env struct {
	Scenario   *Scenario
	Train, Val *data.Dataset
	Test       *data.Dataset
	Spec       nn.Spec
	Params     []float32 // an imported model's starting weights; nil: seeded
	// TrainBytes is the training set as the bytes it was in its file,
	// when it was (images): what a compressed chunk compresses.
	TrainBytes []uint8
}

// NewEnv loads a scenario's data and model. valSize samples of the training
// set become the server's validation set.
func NewEnv(sc *Scenario, valSize int) (*Env, error) {
	name, trainSpec, testSpec := sc.Dataset, "", ""
	if tr, te, ok := strings.Cut(sc.Dataset, ";"); ok {
		name, trainSpec, testSpec = "", tr, te
	}
	d, err := harness.OpenData(name, trainSpec, testSpec, valSize, sc.Seed)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
	}
	mm, err := harness.ResolveModel(sc.Model, d.Train.Classes, nil)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
	}
	if _, err := mm.New(d.Train.Shape, d.Train.Classes, sc.Seed); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
	}
	d.UseNorm(mm)
	env := &Env{Scenario: sc, Train: d.Train, Val: d.Val, Test: d.Test, Spec: mm.Spec, Params: mm.Params}
	if d.Train.ValueBytes == 1 {
		env.TrainBytes, _ = wire.ByteSamples(d.Train.X, data.ByteScale, d.Norm.Mean, d.Norm.Std)
	}
	return env, nil
}

// Options configure one run.
type Options struct {
	Settings protocol.Settings // Policy names the policy
	Hyper    harness.Hyper
	// Seed overrides the scenario's seed when not zero (tuning runs use a
	// separate seed).
	Seed uint64
	// Threads is how many chunks train at once (0: GOMAXPROCS). Results do
	// not depend on it.
	Threads int
}

// Result is one run's outcome; the JSON field names are a contract.
type Result struct {
	Policy          string   `json:"policy"`
	ReachedTarget   bool     `json:"reached_target"`
	TimeToTargetS   *float64 `json:"time_to_target_s"`
	BytesToTarget   *int64   `json:"bytes_to_target"`
	UpdatesToTarget *int64   `json:"updates_to_target"`
	FinalAccuracy   float64  `json:"final_accuracy"`
	BestAccuracy    float64  `json:"best_accuracy"`
	VirtualSeconds  float64  `json:"virtual_seconds"`
	WallSeconds     float64  `json:"wall_seconds"`
	BytesTotal      int64    `json:"bytes_total"`
	UpdatesTotal    int64    `json:"updates_total"`
	StopReason      string   `json:"stop_reason"`
	Events          int64    `json:"events"`
	// Rejected counts messages the server refused, such as a crashed
	// worker's update that arrives after the server learnt it left.
	Rejected int64 `json:"rejected"`
	// Discarded counts updates the server took but did not merge (norm
	// bound, staleness, a non-finite merge, a loss-aware candidate too
	// much worse).
	Discarded int64 `json:"discarded"`
}

// Trace is what happened over time, for plots and CSV.
type Trace struct {
	Points []Point      // the global model's test accuracy after each validated change
	Sizes  []SizePoint  // chunk and mini-batch of every assignment
	Gates  []GatePoint  // every gate decision
	Chunks []ChunkPoint // every chunk trained
}

// ChunkPoint is one chunk of local training and its virtual compute time.
type ChunkPoint struct {
	T       float64
	Worker  int
	Samples int // trained, over all epochs
	Tested  int // held-out samples evaluated
	Seconds float64
}

// Point is one evaluation of the global model.
type Point struct {
	T        float64 `json:"t"`
	Accuracy float64 `json:"accuracy"`
	Loss     float64 `json:"loss"`
	Bytes    int64   `json:"bytes"`
	Updates  int64   `json:"updates"`
}

// SizePoint is one chunk assignment.
type SizePoint struct {
	T         float64
	Worker    int
	Chunk     int
	MiniBatch int
}

// GatePoint is one update-gate decision of a worker.
type GatePoint struct {
	T        float64
	Worker   int
	Z, Thres float64
	Major    bool
}

type simWorker struct {
	id     protocol.WorkerID
	dev    Device
	memory int64
	sm     *protocol.Worker
	// params is the worker's model: the server's shared copy of a version
	// until the worker trains, then its own (own is set).
	params      []float32
	own         bool
	global      []float32 // the last global model received (shared, read-only)
	alive       bool
	left        bool // for good: a pending restart must not bring it back
	incarnation int
	up, down    Time // when the worker's link is free in each direction
	cpu         Time // when the worker's CPU is free (training, messages)
}

type simulation struct {
	env  *Env
	sc   *Scenario
	opts Options
	// target is the scenario's: reaching it halts the run.
	target harness.Target

	now   Time
	seq   int64
	q     queue
	ended bool

	server            *protocol.Server
	psCPU, psUp, psDn Time
	// psPack is when the server's chunk packer is free: chunks are
	// encoded (compressed) and sent off the loop that steps the server,
	// as cluster.PS does, on a core of their own.
	psPack     Time
	host       *host // nil: every device has a CPU of its own
	workers    []*simWorker
	model      *nn.Model
	cost       *train.ChunkTrainer // prices work
	pool       *trainPool
	jobs       int64 // chunk jobs started
	seed       uint64
	fwdFLOPs   int64
	trainFLOPs int64 // a trained sample's forward and backward
	faults     *rand.Rand

	// rawChunk and packed are chunkCost's buffers.
	rawChunk, packed []byte

	res         Result
	trace       Trace
	lastMeasure Time
	// meterStart and meterEnd bound the last test pass booked on a shared
	// host (see meter).
	meterStart, meterEnd Time
}

// Run simulates one policy on env's scenario.
func Run(env *Env, opts Options) (Result, Trace, error) {
	start := time.Now()
	s, err := newSimulation(env, opts)
	if err != nil {
		return Result{}, Trace{}, err
	}
	s.run()
	s.res.WallSeconds = time.Since(start).Seconds()
	return s.res, s.trace, nil
}

func newSimulation(env *Env, opts Options) (*simulation, error) {
	sc := env.Scenario
	seed := sc.Seed
	if opts.Seed != 0 {
		seed = opts.Seed
	}
	m, err := harness.Model{Spec: env.Spec, Params: env.Params}.New(env.Train.Shape, env.Train.Classes, seed)
	if err != nil {
		return nil, err
	}
	st := opts.Settings
	st.SampleBytes = harness.SampleBytes(env.Train)
	_, st.SampleFLOPs = m.FLOPs()
	if budget := Time(sc.TimeBudgetS * float64(time.Second)); st.MaxTime == 0 || budget < st.MaxTime {
		st.MaxTime = budget
	}
	opts.Hyper.Apply(&st)
	if !(opts.Hyper.LocalLR > 0) {
		return nil, fmt.Errorf("policy %s: local learning rate %v, want > 0", st.Policy, opts.Hyper.LocalLR)
	}
	s := &simulation{env: env, sc: sc, opts: opts, model: m, target: harness.Target{Accuracy: sc.TargetAccuracy},
		faults: rand.New(rand.NewPCG(seed, 0x6661756c74)), // "fault"
		host:   newHost(sc.HostCores)}
	s.fwdFLOPs, s.trainFLOPs = m.FLOPs()
	s.cost = &train.ChunkTrainer{Model: m, Data: env.Train, LR: opts.Hyper.LocalLR}
	threads := opts.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	if s.pool, err = newTrainPool(env, opts.Hyper.LocalLR, threads); err != nil {
		return nil, err
	}
	s.seed = seed
	init := append([]float32(nil), m.Params()...)
	s.server, err = harness.NewServer(st, init, env.Train.Len(), harness.Validator{Model: m, Val: env.Val}, seed)
	if err != nil {
		return nil, err
	}
	s.opts.Settings = st
	s.res.Policy = st.Policy
	id := 0
	for _, g := range sc.Workers {
		for range g.Count {
			w := &simWorker{id: protocol.WorkerID(id), dev: g.Device,
				memory: int64(g.MemoryMB * (1 << 20)),
			}
			s.workers = append(s.workers, w)
			s.at(Time(g.JoinAtS*float64(time.Second)), func() { s.join(w) })
			if g.LeaveAtS > 0 {
				s.at(Time(g.LeaveAtS*float64(time.Second)), func() {
					w.left = true
					s.crash(w)
				})
			}
			if g.CrashMTBFS > 0 {
				s.scheduleCrash(w, g, Time(g.JoinAtS*float64(time.Second)))
			}
			id++
		}
	}
	// The budget ends the run even if nothing else happens.
	s.at(st.MaxTime, func() { s.toServer(protocol.Tick{}, 0) })
	return s, nil
}

func (s *simulation) at(t Time, fn func()) {
	s.seq++
	s.q.push(t, s.seq, fn)
}

func (s *simulation) run() {
	acc, loss := s.testEval()
	s.trace.Points = append(s.trace.Points, Point{T: 0, Accuracy: acc, Loss: loss})
	s.res.FinalAccuracy, s.res.BestAccuracy = acc, acc
	for s.q.len() > 0 && !s.ended {
		it := s.q.pop()
		s.now = max(s.now, it.at)
		s.res.Events++
		it.fn()
	}
	if !s.ended {
		s.res.StopReason = "no events left"
	}
	s.res.VirtualSeconds = s.now.Seconds()
}

// testEval measures the global model on the test set: the harness's
// measurement, outside the policy and free of virtual time.
func (s *simulation) testEval() (acc, loss float64) {
	copy(s.model.Params(), s.server.Params())
	loss, acc = s.model.Evaluate(s.env.Test.X, s.env.Test.Y, s.env.Test.Len(), 500)
	return acc, loss
}

func (s *simulation) join(w *simWorker) {
	if w.left {
		return
	}
	sm, err := protocol.NewWorker(w.id, s.opts.Settings)
	if err != nil {
		panic(err) // settings were validated by NewServer
	}
	w.sm, w.alive = sm, true
	w.incarnation++
	w.params, w.own = nil, false
	w.cpu = s.now
	s.send(w, headerBytes, protocol.Register{Worker: w.id, MemoryBytes: w.memory, Cores: 1, GFLOPS: w.dev.GFLOPS})
}

// crash takes a worker down: it loses its local state and the server
// hears that it left.
func (s *simulation) crash(w *simWorker) {
	if !w.alive {
		return
	}
	w.alive = false
	w.incarnation++
	s.toServer(protocol.Leave{Worker: w.id}, 0)
}

func (s *simulation) scheduleCrash(w *simWorker, g WorkerGroup, from Time) {
	next := from + Time(s.faults.ExpFloat64()*g.CrashMTBFS*float64(time.Second))
	s.at(next, func() {
		if !w.alive {
			return
		}
		s.crash(w)
		restart := Time(g.RestartS * float64(time.Second))
		s.at(s.now+restart, func() {
			s.join(w)
			s.scheduleCrash(w, g, s.now)
		})
	})
}

// transfer returns when bytes sent now between the server and w arrive.
// Each link carries one transfer at a time per direction at its own
// bandwidth: the server's link is busy for bytes/its bandwidth, w's for
// bytes/w's, and the message arrives when both have carried it, plus both
// latencies. So the server's sends queue behind each other, and a slow
// device's link slows only that device.
func (s *simulation) transfer(w *simWorker, toPS bool, bytes int64) Time {
	ps := s.sc.PS
	psLink, wLink := &s.psDn, &w.up
	if !toPS {
		psLink, wLink = &s.psUp, &w.down
	}
	*psLink = max(s.now, *psLink) + linkTime(bytes, ps.BandwidthMbps)
	*wLink = max(s.now, *wLink) + linkTime(bytes, w.dev.BandwidthMbps)
	s.res.BytesTotal += bytes
	return max(*psLink, *wLink) + Time((ps.LatencyMs+w.dev.LatencyMs)*float64(time.Millisecond))
}

func linkTime(bytes int64, mbps float64) Time {
	return Time(float64(bytes) * 8 / (mbps * 1e6) * float64(time.Second))
}

// send delivers a worker's message to the server: the worker's CPU
// encodes it, the links carry it, and the server's CPU decodes it.
func (s *simulation) send(w *simWorker, bytes int64, ev protocol.Event) {
	decode := s.sc.PS.msgCPU(bytes)
	leave := func() {
		arrive := s.transfer(w, true, bytes)
		s.at(arrive, func() { s.toServer(ev, decode) })
	}
	s.onCPU(w, w.dev.msgCPU(bytes), leave)
}

// onCPU runs fn once w's CPU has spent cost after the work it has queued;
// at once when cost is zero, so devices without message costs run
// exactly as before they existed.
func (s *simulation) onCPU(w *simWorker, cost Time, fn func()) {
	if cost == 0 {
		fn()
		return
	}
	w.cpu = s.host.run(s.now, max(s.now, w.cpu), cost, 1)
	s.at(w.cpu, fn)
}

// toServer steps the server once its CPU is free, after decode of CPU
// time for the message, and carries out its actions after the compute
// they cost.
func (s *simulation) toServer(ev protocol.Event, decode Time) {
	if s.ended {
		return
	}
	if s.now < s.psCPU {
		s.at(s.psCPU, func() { s.toServer(ev, decode) })
		return
	}
	if err := s.server.Step(s.now, ev); err != nil {
		// A rejected message changes nothing; the server keeps serving.
		s.res.Rejected++
	}
	actions := s.server.Ready()
	var flops float64
	for _, a := range actions {
		switch a := a.(type) {
		case protocol.Applied:
			flops += float64(a.Evals)*float64(s.env.Val.Len())*float64(s.fwdFLOPs) + 3*float64(len(s.server.Params()))
		case protocol.Discarded:
			flops += float64(a.Evals) * float64(s.env.Val.Len()) * float64(s.fwdFLOPs)
			s.res.Discarded++
		}
	}
	cost := decode + s.sc.PS.computeTime(flops, 0)
	s.psCPU = s.host.run(s.now, s.now, cost, 1)
	for _, a := range actions {
		s.serverAction(a)
	}
}

// toDevice sends a message of n bytes from the server to w: the server's
// CPU encodes it, the links carry it, w's CPU decodes it, and deliver runs
// then, unless w crashed on the way.
func (s *simulation) toDevice(w *simWorker, n int64, deliver func()) {
	s.psCPU = s.host.run(s.now, s.psCPU, s.sc.PS.msgCPU(n), 1)
	s.deliver(w, s.psCPU, n, 0, deliver)
}

// sendChunk is toDevice for a chunk, n bytes on the wire, that costs the
// server encode and w decode of CPU time on top of the per-message costs
// (compression): the server's packer encodes it once the step that
// assigned it is done, in the order chunks were assigned, while the
// server goes on stepping.
func (s *simulation) sendChunk(w *simWorker, n int64, encode, decode Time, deliver func()) {
	s.psPack = s.host.run(s.now, max(s.psCPU, s.psPack), s.sc.PS.msgCPU(n)+encode, 1)
	s.deliver(w, s.psPack, n, decode, deliver)
}

// deliver carries a message of n bytes that leaves the server at leave to
// w, whose CPU spends decode on it beyond the per-message cost, and runs
// fn then, unless w crashed on the way.
func (s *simulation) deliver(w *simWorker, leave Time, n int64, decode Time, fn func()) {
	inc := w.incarnation
	up := func() bool { return w.alive && w.incarnation == inc }
	s.at(leave, func() {
		arrive := s.transfer(w, false, n)
		s.at(arrive, func() {
			if !up() {
				return
			}
			s.onCPU(w, w.dev.msgCPU(n)+decode, func() {
				if up() {
					fn()
				}
			})
		})
	})
}

func (s *simulation) serverAction(a protocol.Action) {
	at := s.psCPU
	switch a := a.(type) {
	case protocol.SendModel:
		w := s.workers[a.To]
		s.toDevice(w, int64(4*len(a.Params))+headerBytes, func() {
			w.params, w.own, w.global = a.Params, false, a.Params
			s.toWorker(w, protocol.ModelArrived{Version: a.Version})
		})
	case protocol.Assign:
		w := s.workers[a.To]
		s.trace.Sizes = append(s.trace.Sizes, SizePoint{T: at.Seconds(), Worker: int(a.To), Chunk: len(a.Work.Chunk.Indices), MiniBatch: a.Work.MiniBatch})
		n, encode, decode := s.chunkCost(w, a.Work.Chunk.Indices)
		s.sendChunk(w, n+headerBytes, encode, decode, func() {
			s.toWorker(w, protocol.WorkArrived{Work: a.Work})
		})
	case protocol.Applied:
		// The harness measures after every change the server validated
		// (every change of the chunk policies, seconds apart), and
		// otherwise at most every measure_every_s of virtual time: one-step
		// policies change the model dozens of times a second, and their
		// time to target should wait neither for the server's next
		// validation nor for a coarse clock (at 5 s, runs of 10 s were
		// measured up to 50% late).
		if a.Evals == 0 && at-s.lastMeasure < s.sc.measureEvery() {
			return
		}
		s.lastMeasure = at
		if a.Evals > 0 {
			s.meter(at) // the demo's meter measures only validated changes
		}
		acc, loss := s.testEval()
		s.trace.Points = append(s.trace.Points, Point{T: at.Seconds(), Accuracy: acc, Loss: loss, Bytes: s.res.BytesTotal, Updates: s.res.UpdatesTotal})
		s.res.FinalAccuracy = acc
		s.res.BestAccuracy = max(s.res.BestAccuracy, acc)
		if s.target.Reached(acc) {
			s.res.ReachedTarget = true
			t, b, u := at.Seconds(), s.res.BytesTotal, s.res.UpdatesTotal
			s.res.TimeToTargetS, s.res.BytesToTarget, s.res.UpdatesToTarget = &t, &b, &u
			s.at(at, func() { s.toServer(protocol.Halt{Reason: "target accuracy"}, 0) })
		}
	case protocol.Stop:
		s.res.StopReason = a.Reason
		s.ended = true
		s.now = max(s.now, at)
	}
}

// meter books the harness's test pass of a model changed at on a shared
// host, as the demo's meter takes a core of the machine: passes run back
// to back, and a change that comes while one waits replaces it (see
// cluster's meter). Without a host the harness's measurement is free.
func (s *simulation) meter(at Time) {
	if s.host == nil {
		return
	}
	from := at
	switch {
	case at < s.meterStart:
		return // the waiting pass measures this change instead
	case at < s.meterEnd:
		from = s.meterEnd // after the running pass
	}
	cost := s.sc.PS.computeTime(float64(s.env.Test.Len())*float64(s.fwdFLOPs), 0)
	s.meterEnd = s.host.run(s.now, from, cost, 1)
	s.meterStart = s.meterEnd - cost
}

// train prices w's work now and schedules its training for when it comes
// due (see chunkJob). The work trains on the model the worker holds now,
// with shuffles seeded by the run's seed and the job's number.
func (s *simulation) train(w *simWorker, work protocol.Work) {
	samples, _, flops := s.cost.Cost(work)
	_, tested := protocol.SplitChunk(len(work.Chunk.Indices), work.HoldOut)
	var ref []float32
	if s.server.Policy().GainGate {
		ref = w.global
		flops += int64(tested) * s.fwdFLOPs // the global model's held-out pass
		tested *= 2
	}
	// Training is priced by the device's steps; held-out passes by FLOPs.
	trained, _ := work.Split()
	heldOut := flops - int64(samples)*s.trainFLOPs
	dt := w.dev.trainTime(len(trained), work.MiniBatch, work.Epochs, s.trainFLOPs) + w.dev.computeTime(float64(heldOut), 0)
	s.trace.Chunks = append(s.trace.Chunks, ChunkPoint{T: s.now.Seconds(), Worker: int(w.id),
		Samples: samples, Tested: tested, Seconds: dt.Seconds()})
	w.cpu = s.host.run(s.now, max(s.now, w.cpu), dt, w.dev.Slowdown)
	s.jobs++
	j := &chunkJob{w: w, work: work, inc: w.incarnation, base: w.params, own: w.own, ref: ref, seed: s.seed, due: w.cpu, seq: s.jobs}
	s.pool.add(j)
	s.at(j.due, func() { s.finish(j, dt) })
}

// finish steps a due chunk's result into its worker.
func (s *simulation) finish(j *chunkJob, dt Time) {
	w := j.w
	if !j.live() {
		s.pool.drop(j)
		return
	}
	s.pool.train(j)
	if !j.own && sameSlice(w.params, j.base) {
		w.params, w.own = j.params, true
	}
	res := j.res
	s.toWorker(w, protocol.Trained{ChunkID: j.work.Chunk.ID, Grad: res.Grad, Loss: res.Loss, BaseLoss: j.baseLoss,
		Samples: res.Samples, Steps: res.Steps, TrainTime: dt})
	s.pool.release(j) // the worker has summed the gradient
}

func sameSlice(a, b []float32) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// toWorker steps a worker and carries out its actions.
func (s *simulation) toWorker(w *simWorker, ev protocol.Event) {
	if err := w.sm.Step(ev); err != nil {
		panic(fmt.Sprintf("sim: worker %d: %v", w.id, err)) // the driver broke the protocol
	}
	for _, a := range w.sm.Ready() {
		switch a := a.(type) {
		case protocol.Train:
			s.train(w, a.Work)
		case protocol.SendUpdate:
			d := a.Update.Decision
			s.trace.Gates = append(s.trace.Gates, GatePoint{T: s.now.Seconds(), Worker: int(w.id), Z: d.Z, Thres: d.Thres, Major: true})
			s.res.UpdatesTotal++
			s.send(w, int64(4*len(a.Update.Grad))+headerBytes, a.Update)
		case protocol.SendReport:
			d := a.Report.Decision
			s.trace.Gates = append(s.trace.Gates, GatePoint{T: s.now.Seconds(), Worker: int(w.id), Z: d.Z, Thres: d.Thres})
			s.send(w, headerBytes, a.Report)
		}
	}
}
