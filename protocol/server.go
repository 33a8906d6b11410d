package protocol

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Trainer does a worker's local training. A driver calls it for every Train
// action and steps the result into the worker, with TrainTime filled in as
// measured (cluster) or modelled from flops (simulator).
type Trainer interface {
	// Train trains params in place on w.
	Train(params []float32, w Work) (result Trained, flops int64)
}

// Validator computes the loss of a parameter vector on the server's
// validation set: data carved out of the training set and never handed to
// workers. Every decision of a server (merge weights, patience) uses it;
// test accuracy is the harness's business.
type Validator interface {
	ValidationLoss(params []float32) float64
}

// Server is the parameter server's state machine for every policy. It owns
// the global model, the data dispenser and the allocator.
type Server struct {
	s   Settings
	p   Policy
	val Validator

	// The policy's rules, chosen once by NewServer: fold moves the model
	// by an update (by Policy.Merge) and returns the validation passes it
	// took; deliver takes a checked update to the model (by Policy.Sync);
	// depart updates the sync state when a worker leaves.
	fold    func(g []float32) (evals int, discard string)
	deliver func(u Update) error
	depart  func(w WorkerID)

	params  []float32
	sent    []float32 // the copy of params at sentVersion that SendModel shares
	agg     []float32 // running merge of updates (loss-aware and mean)
	scratch []float32
	version int64

	sentVersion int64

	lastLoss, bestLoss float64
	// sinceBest counts the updates merged since the last new best loss;
	// merged, those since the last validation pass (see patience).
	sinceBest, merged int
	changes           int // global-model changes since the last validation pass
	evalEvery         int

	started, stopped bool
	resumed          bool // restored from a checkpoint of a started run
	now              Time

	disp    *Dispenser
	alloc   *Allocator
	holdOut float64 // of every chunk, for the worker's test loss
	workers map[WorkerID]*serverWorker
	ids     []WorkerID // sorted, so that every loop is deterministic

	roundSum     []float32   // sync and Buffered: sum of this round's (buffer's) updates
	roundUpdates [][]float32 // sync with a robust Aggregate: this round's updates
	roundFrom    []WorkerID
	roundN       int // updates this round, merged or discarded

	norms          []float64 // norms of the last updates screened in, for NormBound
	backup, aggBak []float32 // the model and aggregate before a merge, to roll back
	column         []float32 // robust aggregation's values of one coordinate
	weighted       []float32 // StalenessWeight: the update, scaled

	out []Action
}

type serverWorker struct {
	clock     int  // SSP: updates sent
	held      bool // SSP: an answer is withheld until slower workers catch up
	submitted bool // sync: has sent its update for this round
}

// NewServer returns a server that starts from params (copied) over a
// training set of trainSize samples, shuffled with rng.
func NewServer(s Settings, params []float32, trainSize int, val Validator, rng *rand.Rand) (*Server, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if trainSize < 1 {
		return nil, fmt.Errorf("server: training set of %d samples", trainSize)
	}
	p, _ := PolicyNamed(s.Policy)
	srv := &Server{
		s: s, p: p, val: val,
		params:  slices.Clone(params),
		scratch: make([]float32, len(params)),
		disp:    NewDispenser(trainSize, rng),
		workers: map[WorkerID]*serverWorker{},
	}
	epochs, holdOut := s.Epochs, 0.0
	if p.MiniBatchUnit {
		epochs = 1
	}
	if p.HoldOut {
		holdOut = s.HoldOut
	}
	srv.holdOut = holdOut
	if p.TestFirst {
		holdOut = 0 // every sample of a chunk is trained on
	}
	srv.alloc = NewAllocator(s, epochs, holdOut, p.AimTime)
	srv.alloc.FirstBySpeed = p.FirstBySpeed
	srv.alloc.SetPass(trainSize)
	switch p.Merge {
	case MergeLossAware:
		srv.fold = srv.foldLossAware
	case MergeMean:
		srv.fold = srv.foldMean
	default: // MergeApply, MergeAverage: the update is taken as it is
		srv.fold = srv.foldApply
	}
	switch p.Sync {
	case Rounds:
		srv.deliver, srv.depart = srv.deliverRounds, srv.departRounds
	case StaleSync:
		srv.deliver, srv.depart = srv.deliverStale, func(WorkerID) { srv.releaseHeld() }
	case Buffered:
		srv.deliver, srv.depart = srv.deliverBuffered, func(WorkerID) {}
	default:
		srv.deliver, srv.depart = srv.deliverAsync, func(WorkerID) {}
	}
	srv.evalEvery = s.EvalEvery
	if srv.evalEvery == 0 {
		srv.evalEvery = 1
		if p.MiniBatchUnit {
			srv.evalEvery = max(1, s.Chunk/s.MiniBatch)
		}
	}
	return srv, nil
}

// Params returns the global model. It is the server's own slice: read it
// between steps, do not keep it.
func (s *Server) Params() []float32 { return s.params }

// Version returns the number of global-model changes so far.
func (s *Server) Version() int64 { return s.version }

// Stopped reports whether the run is over.
func (s *Server) Stopped() bool { return s.stopped }

// EvalEvery returns how many global-model changes pass between validation
// passes.
func (s *Server) EvalEvery() int { return s.evalEvery }

// Policy returns the server's policy.
func (s *Server) Policy() Policy { return s.p }

// Dispenser returns the data dispenser, for inspection.
func (s *Server) Dispenser() *Dispenser { return s.disp }

// Ready returns the actions accumulated since the last call, in order.
func (s *Server) Ready() []Action {
	out := s.out
	s.out = nil
	return out
}

// Step feeds the server one event at time now. An error means the event
// was rejected (unknown worker, bad update); the server's state is
// unchanged by it and it keeps serving.
func (s *Server) Step(now Time, ev Event) error {
	if now > s.now {
		s.now = now
	}
	if s.stopped {
		return nil
	}
	var err error
	switch e := ev.(type) {
	case Register:
		err = s.register(e)
	case Leave:
		err = s.leave(e.Worker)
	case Report:
		err = s.report(e)
	case Update:
		err = s.update(e)
	case Halt:
		s.stop(e.Reason)
	case Start:
		err = s.begin()
	case Tick:
	default:
		err = fmt.Errorf("server: unexpected event %T", ev)
	}
	if !s.stopped && s.s.MaxTime > 0 && s.now >= s.s.MaxTime {
		s.stop("time budget")
	}
	return err
}

// maxGFLOPS bounds a declared speed: a worker claiming more would be
// handed the largest chunk its memory allows on its word alone.
const maxGFLOPS = 1e6

func (s *Server) register(e Register) error {
	if _, ok := s.workers[e.Worker]; ok {
		return fmt.Errorf("server: worker %d is already registered", e.Worker)
	}
	if !(e.GFLOPS >= 0 && e.GFLOPS <= maxGFLOPS) {
		return fmt.Errorf("server: worker %d declares %v GFLOP/s, want 0 to %g", e.Worker, e.GFLOPS, float64(maxGFLOPS))
	}
	st := &serverWorker{}
	if s.p.Sync == StaleSync {
		// A newcomer starts level with the slowest, not behind everyone.
		// (O(workers): only SSP keeps clocks.)
		st.clock = s.minClock()
	}
	s.workers[e.Worker] = st
	i, _ := slices.BinarySearch(s.ids, e.Worker)
	s.ids = slices.Insert(s.ids, i, e.Worker)
	s.alloc.Add(e.Worker, e.MemoryBytes, e.GFLOPS)
	if s.started {
		s.welcome(e.Worker)
		return nil
	}
	if len(s.workers) < s.s.MinWorkers {
		return nil
	}
	return s.begin()
}

// begin starts training with the registered workers.
func (s *Server) begin() error {
	if s.started {
		return nil
	}
	if len(s.workers) == 0 {
		return fmt.Errorf("server: start with no worker registered")
	}
	s.started = true
	if !s.resumed { // a resumed run keeps its losses, and its patience
		s.lastLoss = s.val.ValidationLoss(s.params)
		s.bestLoss = s.lastLoss
	}
	for _, id := range s.ids {
		s.welcome(id)
	}
	return nil
}

// welcome sends a worker the model and two units of work: one to start on
// and one prefetched, so it never waits for data between chunks.
func (s *Server) welcome(w WorkerID) {
	s.sendModel(w)
	s.assign(w, false)
	s.assign(w, true)
}

func (s *Server) sendModel(w WorkerID) {
	if s.sent == nil || s.sentVersion != s.version {
		s.sent, s.sentVersion = slices.Clone(s.params), s.version
	}
	s.out = append(s.out, SendModel{To: w, Version: s.version, Params: s.sent})
}

func (s *Server) assign(w WorkerID, prefetch bool) {
	chunk, mb := s.alloc.Size(w)
	epochs := s.alloc.epochs
	if s.p.MiniBatchUnit {
		chunk, mb = s.s.MiniBatch, s.s.MiniBatch
	}
	c := s.disp.Next(w, chunk)
	s.out = append(s.out, Assign{To: w, Prefetch: prefetch,
		Work: Work{Chunk: c, MiniBatch: mb, Epochs: epochs, HoldOut: s.holdOut, TestFirst: s.p.TestFirst}})
}

func (s *Server) leave(w WorkerID) error {
	if _, ok := s.workers[w]; !ok {
		return fmt.Errorf("server: unknown worker %d left", w)
	}
	s.disp.Release(w)
	s.alloc.Remove(w)
	delete(s.workers, w)
	if i, ok := slices.BinarySearch(s.ids, w); ok {
		s.ids = slices.Delete(s.ids, i, i+1)
	}
	s.depart(w)
	return nil
}

// departRounds: the round no longer waits for a worker that left. An
// update it already sent stays in the round: it was computed on this
// round's model, and its gradient is in the round's sum.
func (s *Server) departRounds(WorkerID) {
	s.maybeEndRound()
}

// accept checks what every report must satisfy and acknowledges its chunk.
func (s *Server) accept(r Report) error {
	if _, ok := s.workers[r.Worker]; !ok {
		return fmt.Errorf("server: report from unknown worker %d", r.Worker)
	}
	if r.TrainTime < 0 || r.Samples < 0 || r.Steps < 0 {
		return fmt.Errorf("server: worker %d: negative time or counts in report", r.Worker)
	}
	return s.disp.Ack(r.Worker, r.ChunkID)
}

func (s *Server) observe(r Report) {
	if !s.p.Allocate {
		return
	}
	if changed, c, b, pred := s.alloc.Observe(r); changed {
		s.out = append(s.out, Resized{Worker: r.Worker, Chunk: c, MiniBatch: b, Predicted: pred})
	}
}

func (s *Server) report(r Report) error {
	if err := s.accept(r); err != nil {
		return err
	}
	s.observe(r)
	s.assign(r.Worker, true)
	return nil
}

func (s *Server) update(u Update) error {
	if len(u.Grad) != len(s.params) {
		return fmt.Errorf("server: update from worker %d has %d values, model has %d", u.Worker, len(u.Grad), len(s.params))
	}
	// g-g is 0 for every finite g and NaN for NaN and ±Inf: one
	// subtraction a value, summed so the loop has no branch.
	var sum float32
	for _, g := range u.Grad {
		sum += g - g
	}
	if sum != 0 {
		for i, g := range u.Grad {
			if !finite(float64(g)) {
				return fmt.Errorf("server: update from worker %d has a non-finite value at %d", u.Worker, i)
			}
		}
	}
	if err := s.accept(u.Report); err != nil {
		return err
	}
	s.observe(u.Report)
	s.assign(u.Worker, true)
	if reason := s.screen(u); reason != "" {
		// Taken, not merged: the sender is answered as if it had been, so
		// that an honest worker wrongly screened out trains on.
		s.out = append(s.out, Discarded{From: []WorkerID{u.Worker}, Reason: reason})
		u.Grad = nil
	}
	if s.p.StalenessWeight && u.Grad != nil {
		// Scaled in the server's scratch: the update's slice is the
		// driver's.
		w := float32(1 / math.Sqrt(float64(1+s.version-u.Base)))
		s.weighted = s.weighted[:0]
		for _, g := range u.Grad {
			s.weighted = append(s.weighted, w*g)
		}
		u.Grad = s.weighted
	}
	return s.deliver(u)
}

// Reasons an update is discarded (Discarded.Reason).
const (
	DiscardNorm      = "update_norm"      // beyond NormBound
	DiscardStale     = "stale_update"     // beyond MaxStaleness, or of a version the server never had
	DiscardNonFinite = "non_finite_model" // the merge made the model non-finite: rolled back
	DiscardWorse     = "worse_loss"       // loss-aware: beyond RejectWorse
)

// normWindow is how many recent updates NormBound compares with.
const normWindow = 32

// screen returns why an update must not be merged, or "": an update from
// a model version the server never had or too old, or too large against
// the recent updates or against the model.
func (s *Server) screen(u Update) string {
	if u.Base < 0 || u.Base > s.version || (s.s.MaxStaleness > 0 && s.version-u.Base > int64(s.s.MaxStaleness)) {
		return DiscardStale
	}
	if s.s.NormBound == 0 {
		return ""
	}
	n := norm(u.Grad)
	if m := median(s.norms); len(s.norms) >= 4 && n > s.s.NormBound*m {
		return DiscardNorm
	}
	if s.s.ServerLR*n > s.s.NormBound*max(1, norm(s.params)) {
		return DiscardNorm
	}
	if len(s.norms) == normWindow {
		s.norms = s.norms[1:]
	}
	s.norms = append(s.norms, n)
	return ""
}

func norm(v []float32) float64 {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	return math.Sqrt(sum)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// deliverAsync merges the update and answers its sender with the new
// model. (A discarded update has no Grad.)
func (s *Server) deliverAsync(u Update) error {
	if u.Grad != nil {
		s.merge(u.Grad, []WorkerID{u.Worker})
	}
	s.sendModel(u.Worker)
	return nil
}

// deliverBuffered adds the update to the buffer and answers its sender
// with the current model; a full buffer moves the model as a round does
// (its mean, or the robust Aggregate).
func (s *Server) deliverBuffered(u Update) error {
	if u.Grad != nil {
		s.collect(u)
		if len(s.roundFrom) >= s.s.Buffer {
			s.mergeRound()
		}
	}
	s.sendModel(u.Worker)
	return nil
}

// deliverStale merges the update; its sender gets the new model once it
// is within the staleness bound of the slowest worker.
func (s *Server) deliverStale(u Update) error {
	if u.Grad != nil {
		s.merge(u.Grad, []WorkerID{u.Worker})
	}
	st := s.workers[u.Worker]
	st.clock++
	st.held = true
	s.releaseHeld()
	return nil
}

// merge folds one update into the global model by the policy's rule,
// then validates and counts patience. A merge that the rule refuses, or
// that leaves the model non-finite, is rolled back and discarded.
func (s *Server) merge(g []float32, from []WorkerID) {
	if s.stopped {
		return
	}
	s.backup = append(s.backup[:0], s.params...)
	hadAgg := s.agg != nil
	if hadAgg {
		s.aggBak = append(s.aggBak[:0], s.agg...)
	}
	evals, discard := s.fold(g)
	if discard == "" && !allFinite(s.params) {
		discard = DiscardNonFinite
	}
	if discard != "" {
		copy(s.params, s.backup)
		if hadAgg {
			copy(s.agg, s.aggBak)
		} else {
			s.agg = nil
		}
		s.out = append(s.out, Discarded{From: from, Reason: discard, Evals: evals})
		return
	}
	s.version++
	s.changes++
	s.merged += len(from)
	valLoss := s.lastLoss
	// Loss-aware merging weighs the next update by the current loss: it
	// must be validated after every change.
	if s.changes >= s.evalEvery || s.p.Merge == MergeLossAware {
		s.changes = 0
		valLoss = s.val.ValidationLoss(s.params)
		evals++
		s.lastLoss = valLoss
		s.patience(valLoss)
	}
	s.out = append(s.out, Applied{Version: s.version, ValLoss: valLoss, Evals: evals, From: from})
	if s.patienceSpent() {
		s.stop("converged")
	}
}

// foldLossAware is Hermes's merge: the running aggregate is weighted by
// the current model's loss and the update by the loss the model would
// have with it alone, so a harmful update gets little weight; one that
// would make the loss worse than RejectWorse allows gets none.
func (s *Server) foldLossAware(g []float32) (int, string) {
	if s.agg == nil {
		// The first update is the aggregate, unweighed: NormBound's
		// bound against the model's norm is what screens it.
		s.foldRunning(g, 1, 1)
		return 0, ""
	}
	lr := float32(s.s.ServerLR)
	for i, v := range s.params {
		s.scratch[i] = v - lr*g[i]
	}
	cand := s.val.ValidationLoss(s.scratch)
	if s.s.RejectWorse > 0 && finite(s.lastLoss) && !(cand <= (1+s.s.RejectWorse)*s.lastLoss) {
		return 1, DiscardWorse
	}
	w1, w2 := 1/s.lastLoss, 1/cand
	if !finite(w2) || cand <= 0 {
		w2 = 0
	}
	s.foldRunning(g, w1, w2)
	return 1, ""
}

// foldMean is the running aggregate with equal weights (hermes-mean).
func (s *Server) foldMean(g []float32) (int, string) {
	s.foldRunning(g, 1, 1)
	return 0, ""
}

// foldRunning merges g into the running aggregate with weights w1 (the
// aggregate) and w2 (g), and applies the aggregate to the model.
func (s *Server) foldRunning(g []float32, w1, w2 float64) {
	switch {
	case s.agg == nil:
		// The first update is the aggregate; merging it with a zero
		// aggregate would halve it.
		s.agg = slices.Clone(g)
	case !finite(w1) || w1 <= 0 || w1+w2 == 0:
		// Without a usable current loss, take the update as it is.
		copy(s.agg, g)
	default:
		a, b := float32(w1/(w1+w2)), float32(w2/(w1+w2))
		for i := range s.agg {
			s.agg[i] = a*s.agg[i] + b*g[i]
		}
	}
	lr := float32(s.s.ServerLR)
	for i := range s.params {
		s.params[i] -= lr * s.agg[i]
	}
}

// foldApply applies g as it is: one worker's update (ASP, SSP) or a
// round's mean (BSP, LocalSGD).
func (s *Server) foldApply(g []float32) (int, string) {
	lr := float32(s.s.ServerLR)
	p := s.params[:len(g)]
	for i, v := range g {
		p[i] -= lr * v
	}
	return 0, ""
}

func allFinite(v []float32) bool {
	var sum float32
	for _, x := range v {
		sum += x - x // 0 for finite x, NaN otherwise
	}
	return sum == 0
}

// patienceSpent reports whether Settings.Patience rounds of the fleet's
// work have been merged since the last new best loss. A unit of work is a
// chunk, or evalEvery updates for the policies whose update is one
// mini-batch. In int64: a patience of 1<<20 ("never") times a unit and a
// fleet overflows the 32-bit int of armv7 builds.
func (s *Server) patienceSpent() bool {
	unit := int64(1)
	if s.p.MiniBatchUnit {
		unit = int64(s.evalEvery)
	}
	return int64(s.sinceBest) >= int64(s.s.Patience)*unit*int64(max(1, len(s.workers)))
}

// patience counts the updates merged without a new best loss. The run
// stops after Settings.Patience rounds of the fleet's work without one
// (every worker a unit of work each round): counted in aggregations, as
// the paper does, a policy that merges every chunk of eight workers
// stopped after three chunks a worker, on validation noise, while one that
// merges every third chunk (Hermes's gate) or a round's mean (LocalSGD)
// was given three to eight times the data to improve.
func (s *Server) patience(loss float64) {
	merged := s.merged
	s.merged = 0
	if finite(loss) && loss < s.bestLoss {
		s.bestLoss, s.sinceBest = loss, 0
		return
	}
	s.sinceBest += merged
}

// deliverRounds adds the update to the round; the model moves when every
// active worker has sent one.
func (s *Server) deliverRounds(u Update) error {
	st := s.workers[u.Worker]
	if st.submitted {
		return fmt.Errorf("server: worker %d sent two updates in one round", u.Worker)
	}
	st.submitted = true
	s.roundN++
	if u.Grad != nil {
		s.collect(u)
	}
	s.maybeEndRound()
	return nil
}

// collect adds an update to the round (or FedBuff's buffer).
func (s *Server) collect(u Update) {
	if s.roundSum == nil {
		s.roundSum = make([]float32, len(s.params))
	}
	if s.s.Aggregate == "mean" {
		for i, g := range u.Grad {
			s.roundSum[i] += g
		}
	} else {
		s.roundUpdates = append(s.roundUpdates, slices.Clone(u.Grad))
	}
	s.roundFrom = append(s.roundFrom, u.Worker)
}

// mergeRound merges the round's aggregate, if any update of it was
// merged rather than discarded, and empties the round.
func (s *Server) mergeRound() {
	if len(s.roundFrom) > 0 {
		from := slices.Clone(s.roundFrom)
		slices.Sort(from)
		s.merge(s.roundAggregate(), from)
		clear(s.roundSum)
	}
	s.roundFrom, s.roundUpdates = s.roundFrom[:0], s.roundUpdates[:0]
}

// roundAggregate combines the round's merged updates into roundSum, by
// Settings.Aggregate.
func (s *Server) roundAggregate() []float32 {
	if s.s.Aggregate == "mean" {
		inv := 1 / float32(len(s.roundFrom))
		for i := range s.roundSum {
			s.roundSum[i] *= inv
		}
		return s.roundSum
	}
	k := len(s.roundUpdates)
	lo, hi := 0, k // the coordinate's values that count, sorted
	if s.s.Aggregate == "trimmed-mean" {
		cut := min(int(s.s.Trim*float64(k)), (k-1)/2)
		lo, hi = cut, k-cut
	}
	for i := range s.roundSum {
		s.column = s.column[:0]
		for _, u := range s.roundUpdates {
			s.column = append(s.column, u[i])
		}
		slices.Sort(s.column)
		if s.s.Aggregate == "median" {
			m := s.column[k/2]
			if k%2 == 0 {
				m = (s.column[k/2-1] + m) / 2
			}
			s.roundSum[i] = m
			continue
		}
		var sum float32
		for _, v := range s.column[lo:hi] {
			sum += v
		}
		s.roundSum[i] = sum / float32(hi-lo)
	}
	return s.roundSum
}

func (s *Server) maybeEndRound() {
	if s.roundN == 0 {
		return
	}
	for _, id := range s.ids {
		if !s.workers[id].submitted {
			return
		}
	}
	s.mergeRound()
	s.roundN = 0
	for _, id := range s.ids {
		s.workers[id].submitted = false
		s.sendModel(id)
	}
}

func (s *Server) minClock() int {
	m := -1
	for _, st := range s.workers {
		if m < 0 || st.clock < m {
			m = st.clock
		}
	}
	return max(m, 0)
}

// releaseHeld answers the SSP workers that are within the staleness bound
// of the slowest one.
func (s *Server) releaseHeld() {
	low := s.minClock()
	for _, id := range s.ids {
		st := s.workers[id]
		if st.held && st.clock-low <= s.s.Staleness {
			st.held = false
			s.sendModel(id)
		}
	}
}

func (s *Server) stop(reason string) {
	if s.stopped {
		return
	}
	s.stopped = true
	s.out = append(s.out, Stop{Reason: reason})
}
