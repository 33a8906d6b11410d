package cluster

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/hermes-go/hermes/protocol"
	"github.com/hermes-go/hermes/wire"
)

// expire takes workers that have been silent too long for gone: the
// protocol returns their unacknowledged chunks to the queue.
func (p *PS) expire() {
	var ids []protocol.WorkerID
	for id, t := range p.live {
		if time.Since(t) > p.cfg.Timeout {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		p.sum.Lost++
		p.log.Warn("worker timed out", "worker", p.names[id], "after", p.cfg.Timeout)
		p.drop(id)
	}
}

func (p *PS) drop(id protocol.WorkerID) {
	delete(p.live, id)
	if name := p.names[id]; p.session[name] == id {
		delete(p.session, name)
	}
	p.step(protocol.Leave{Worker: id})
	// Sessions come and go; only live ones keep their name.
	delete(p.names, id)
}

// Bounds on what joins may grow: distinct worker names in a run, and how
// often one name may join (a restarting device joins a few times a
// minute at most; more is a loop or an attack).
const (
	maxNames   = 1 << 14
	joinBurst  = 5
	joinWindow = time.Minute
)

// joinAllowed records a join of name now and reports whether it is within
// joinBurst a joinWindow.
func (p *PS) joinAllowed(name string, now time.Time) bool {
	recent := slices.DeleteFunc(p.joinTimes[name], func(t time.Time) bool { return now.Sub(t) > joinWindow })
	if len(recent) >= joinBurst {
		p.joinTimes[name] = recent
		return false
	}
	p.joinTimes[name] = append(recent, now)
	return true
}

// sender checks that a message from the worker called name (NATS vouches
// for the subject it came on) that claims worker id in its body comes from
// name's live session, and records that the worker spoke. A body that
// claims another worker's session is forged; one that claims an earlier
// session of name's, or none known, is stale.
func (p *PS) sender(name string, id protocol.WorkerID) bool {
	if cur, ok := p.session[name]; ok && cur == id {
		p.live[id] = time.Now()
		return true
	}
	if owner, ok := p.names[id]; ok && owner != name {
		p.reject(rejectForged, name, "claims", owner, "id", id)
	} else {
		p.rejected.add(rejectStale)
		p.log.Debug("message from a session that is over", "worker", name, "id", id)
	}
	return false
}

// account records a worker's report for the status table; it returns
// false when the report is not from the sender's live session.
func (p *PS) account(from string, r protocol.Report, major bool) bool {
	if !p.sender(from, r.Worker) {
		return false
	}
	st := p.status[from]
	if major {
		st.Major++
	} else {
		st.Minor++
	}
	st.LastLoss = r.Loss
	return true
}

// join admits the worker called name (NATS vouches for the subject the
// join came on). A name that is live already is a worker that restarted or
// lost its connection: its old session is dropped (its chunks go back to
// the queue) and it starts afresh.
func (p *PS) join(name string, m wire.Join, reply func(any)) {
	if m.Name != name {
		p.reject(rejectForged, name, "claims", m.Name)
		reply(wire.Stop{Reason: fmt.Sprintf("join as %q on the subject of %q", m.Name, name)})
		return
	}
	if !ValidName(m.Name) || m.Name == "ps" {
		p.reject(rejectJoin, name, "err", "bad name")
		reply(wire.Stop{Reason: fmt.Sprintf("worker name %q: use letters, digits, - and _ (and not \"ps\")", m.Name)})
		return
	}
	if m.Version != fmt.Sprint(wire.Version) {
		p.reject(rejectJoin, name, "err", "wire version", "version", m.Version)
		reply(wire.Stop{Reason: fmt.Sprintf("wire version %s, the server speaks %d", m.Version, wire.Version)})
		return
	}
	if _, known := p.status[name]; !known && len(p.status) >= maxNames {
		p.reject(rejectJoin, name, "err", "too many workers", "workers", len(p.status))
		reply(wire.Stop{Reason: fmt.Sprintf("the run has %d workers, the most it takes", maxNames)})
		return
	}
	if !p.joinAllowed(name, time.Now()) {
		// No answer: the worker asks again after its request times out.
		p.reject(rejectJoinRate, name, "joins", joinBurst, "within", joinWindow)
		return
	}
	if old, ok := p.session[name]; ok {
		p.log.Info("worker rejoined; its previous session is dropped", "worker", name, "old_id", old)
		p.drop(old)
	}
	id := protocol.WorkerID(p.nextWorker)
	p.nextWorker++
	p.names[id] = name
	p.live[id] = time.Now()
	p.session[name] = id
	st, ok := p.status[name]
	if !ok {
		st = &WorkerStatus{}
		p.status[name] = st
		p.joined.Store(name, true)
	}
	st.Joins++
	spec, _ := json.Marshal(p.cfg.Spec)
	settings, _ := json.Marshal(p.cfg.Settings)
	reply(wire.Welcome{Worker: int64(id), Spec: string(spec), Settings: string(settings), Shape: shape32(p.cfg.Train.Shape),
		Classes: int64(p.cfg.Train.Classes), LocalLR: p.cfg.LocalLR})
	p.log.Info("worker joined", "worker", name, "id", id, "memory_mb", m.MemoryBytes>>20, "cores", m.Cores)
	p.step(protocol.Register{Worker: id, MemoryBytes: m.MemoryBytes, Cores: m.Cores})
}
