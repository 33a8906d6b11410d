package protocol

import "math"

// Gate is Hermes's generalized update policy (GUP): it keeps the last
// Window test losses and calls an update major when the newest loss is a
// significant improvement, z = (loss - mean) / std <= Thres. The threshold
// starts at Alpha (-1.3: 1.3 standard deviations better than recent
// losses) and relaxes towards 0 while no major update happens, so a worker
// that plateaus still reports now and then.
//
// The gain gate (Policy.GainGate) keeps the relaxation but decides on
// another statistic; see ObserveGain.
type Gate struct {
	alpha, beta float64
	gain        float64
	lambda      int
	size        int
	reset       bool

	window     []float64
	thres      float64
	sinceMajor int
	// eager makes the first loss a worker observes a major update
	// (Policy.EagerStart); sent says one was made.
	eager, sent bool
	// maxWithheld bounds the seconds of training withheld (Policy.Deadline;
	// 0: no bound); withheld counts them since the last major update.
	maxWithheld, withheld float64
}

// NewGate returns a gate with the settings' alpha, beta, lambda, window and
// reset rule.
func NewGate(s Settings) *Gate {
	return &Gate{alpha: s.Alpha, beta: s.Beta, lambda: s.Lambda, size: s.Window,
		reset: s.ResetThreshold, thres: s.Alpha, window: make([]float64, 0, s.Window)}
}

// NewGainGate returns a gain gate with the settings' gain, beta and
// lambda.
func NewGainGate(s Settings) *Gate {
	return &Gate{gain: s.Gain, beta: s.Beta, lambda: s.Lambda, thres: s.Gain}
}

// ObserveGain decides on the relative fall of the held-out loss from the
// global model the worker last received (base) to its local model
// (loss), both measured on the newest chunk's held-out samples, which
// neither has trained on: major when (base - loss) / base >= the
// threshold, which relaxes towards 0 while no major update happens and
// returns to Settings.Gain after one. Decision.Z carries the gain.
//
// The paper's z-score cannot call a worker's first two chunks major (with
// two losses in the window |z| is 1) and a steady fall needs four: on a
// link-bound fleet the first update then arrives after most of the data
// has been sent. The gain asks what the server needs to know: would this
// update improve the global model on data it has not seen, by enough to
// pay for sending it? Its weakness: a negative gain never passes the
// relaxing threshold, so a worker that no longer beats the global model
// stops sending (one reason it is a candidate, not hermes's gate).
func (g *Gate) ObserveGain(loss, base float64) Decision {
	if !finite(loss) {
		return Decision{Thres: g.thres, Reason: "non-finite loss"}
	}
	if !finite(base) || base <= 0 {
		return g.minor(Decision{Thres: g.thres, Reason: "no baseline loss"})
	}
	gain := (base - loss) / base
	d := Decision{Z: gain, Thres: g.thres}
	if gain >= g.thres {
		d.Major, d.Reason = true, "significant gain over the global model"
		g.sinceMajor = 0
		g.thres = g.gain
		return d
	}
	d.Reason = "gain too small"
	return g.minor(d)
}

// Due turns a minor decision on a chunk of a finite loss that trained for
// t into a major one once the training withheld since the last major
// update, t included, reaches the gate's bound (Policy.Deadline). The z-score's window keeps
// its losses: the bound does not say the model improved, only that the
// server has waited long enough for what it learned. Call it after every
// decision.
//
// Why: the z-score needs three chunks before it can call the first major,
// and more after each major update. On a fleet of fast, link-bound
// devices (edge-8) that wait is a fraction of a second and saves the
// server's link; on slow links and slow devices (cellular-8, the CNN) it
// is many seconds to minutes of training the server does not use.
func (g *Gate) Due(d Decision, loss float64, t Time) Decision {
	g.withheld += t.Seconds()
	switch {
	case d.Major:
		g.withheld = 0
	case g.maxWithheld > 0 && g.withheld >= g.maxWithheld && finite(loss):
		d.Major, d.Reason = true, "training withheld too long"
		g.withheld, g.sent, g.sinceMajor = 0, true, 0
	}
	return d
}

// Threshold returns the current z-score threshold.
func (g *Gate) Threshold() float64 { return g.thres }

// Window returns the losses in the window, oldest first.
func (g *Gate) Window() []float64 { return g.window }

// Observe takes the test loss after a chunk and decides.
func (g *Gate) Observe(loss float64) Decision {
	if !finite(loss) {
		// A diverged local model must never reach the server. The loss
		// stays out of the window, which it would poison.
		return Decision{Thres: g.thres, Reason: "non-finite loss"}
	}
	if g.eager && !g.sent {
		// Whatever a worker's first chunk taught its model, the global
		// model has not seen that data: the z-score could not say so
		// before the third chunk.
		g.sent, g.sinceMajor = true, 0
		return Decision{Major: true, Thres: g.thres, Reason: "first chunk"}
	}
	if len(g.window) == g.size {
		copy(g.window, g.window[1:])
		g.window = g.window[:g.size-1]
	}
	g.window = append(g.window, loss)
	if len(g.window) == 1 {
		return g.minor(Decision{Thres: g.thres, Reason: "first loss in window"})
	}
	mean, std := meanStd(g.window)
	// Equal losses have std 0: their z-score is 0, not NaN, so the gate
	// still decides (major only once the threshold has relaxed to 0).
	z := 0.0
	if std > 0 {
		z = (loss - mean) / std
	}
	d := Decision{Z: z, Thres: g.thres}
	if z <= g.thres {
		d.Major, d.Reason = true, "significant improvement"
		g.sent = true
		g.window = g.window[:0]
		g.sinceMajor = 0
		if g.reset {
			g.thres = g.alpha
		}
		return d
	}
	d.Reason = "not significant"
	return g.minor(d)
}

func (g *Gate) minor(d Decision) Decision {
	g.sinceMajor++
	if g.sinceMajor >= g.lambda {
		g.thres *= 1 - g.beta // towards 0, from either side
	}
	return d
}

// meanStd returns the mean and population standard deviation of xs.
func meanStd(xs []float64) (mean, std float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(xs)))
}
