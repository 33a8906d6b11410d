package sim

// host is the one machine every device and the server share when a
// scenario puts them on one (Scenario.HostCores), as `hermes demo` does:
// their CPU work queues for its cores. Without a host every device has a
// CPU of its own, and a demo of five processes on two cores would look
// faster simulated than it runs.
type host struct {
	cores [][]span // each core's booked work, in time order
}

type span struct{ from, to Time }

func newHost(cores int) *host {
	if cores <= 0 {
		return nil
	}
	return &host{cores: make([][]span, cores)}
}

// run books work that can start at from (not before now) and takes cost
// on a core of its own, and returns when it ends. The work goes into the
// earliest gap of any core that fits it: devices book work ahead (a
// message to decode once training is over), and a core booked for later
// is free until then. No more than len(cores) pieces of work run at once.
//
// A device slowed down s times (Device.Slowdown) computes cost/s and then
// sleeps s-1 times as long as its computing took, as `hermes worker
// --slowdown` does: its CPU time, not its wait for a core. A nil host
// runs everything at once.
func (h *host) run(now, from, cost Time, slowdown float64) Time {
	if h == nil || cost == 0 {
		return from + cost
	}
	busy := cost
	if slowdown > 1 {
		busy = Time(float64(cost) / slowdown)
	}
	best, bestCore, bestAt := Time(-1), 0, 0
	for c := range h.cores {
		// Work that ended before now can hold up nothing booked from now.
		spans := h.cores[c]
		k := 0
		for k < len(spans) && spans[k].to <= now {
			k++
		}
		spans = spans[k:]
		h.cores[c] = spans
		start, at := fit(spans, from, busy)
		if best < 0 || start < best {
			best, bestCore, bestAt = start, c, at
		}
	}
	spans := h.cores[bestCore]
	spans = append(spans, span{})
	copy(spans[bestAt+1:], spans[bestAt:])
	spans[bestAt] = span{best, best + busy}
	h.cores[bestCore] = spans
	if slowdown > 1 {
		return best + Time(slowdown*float64(busy))
	}
	return best + busy
}

// fit returns the earliest start at or after from of busy time between
// spans, and where its span goes among them.
func fit(spans []span, from, busy Time) (start Time, at int) {
	t := from
	for i, sp := range spans {
		if sp.to <= t {
			continue
		}
		if t+busy <= sp.from {
			return t, i
		}
		t = sp.to
	}
	return t, len(spans)
}
