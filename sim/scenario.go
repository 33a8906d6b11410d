package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// Scenario fixes everything a simulated run depends on (see
// shared/scenarios/README.md): data, model, target, seed, budget, and the
// devices of the parameter server and the workers.
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Dataset is a named data set ("fashion-mnist") or "TRAIN;TEST", two
	// file specs as --train and --test take them.
	Dataset        string        `json:"dataset"`
	Model          string        `json:"model"`
	TargetAccuracy float64       `json:"target_accuracy"`
	TimeBudgetS    float64       `json:"time_budget_s"`
	Seed           uint64        `json:"seed"`
	PS             Device        `json:"ps"`
	Workers        []WorkerGroup `json:"workers"`
}

// Device is a machine's compute speed and network link.
type Device struct {
	GFLOPS        float64 `json:"gflops"`
	BandwidthMbps float64 `json:"bandwidth_mbps"`
	LatencyMs     float64 `json:"latency_ms"`
}

// WorkerGroup is Count identical worker devices and their faults.
type WorkerGroup struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
	Device
	MemoryMB float64 `json:"memory_mb"`
	// Faults: leave_at_s (disconnect then), join_at_s (arrive only then),
	// crash_mtbf_s (mean time between crashes; a crash loses the local
	// state and the device rejoins after restart_s).
	LeaveAtS   float64 `json:"leave_at_s,omitempty"`
	JoinAtS    float64 `json:"join_at_s,omitempty"`
	CrashMTBFS float64 `json:"crash_mtbf_s,omitempty"`
	RestartS   float64 `json:"restart_s,omitempty"`
}

// LoadScenario reads and validates a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	sc, err := ParseScenario(b)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", path, err)
	}
	// Data files are named relative to the scenario file, so a scenario
	// and its data can move together.
	if tr, te, ok := strings.Cut(sc.Dataset, ";"); ok {
		sc.Dataset = relTo(path, tr) + ";" + relTo(path, te)
	}
	return sc, nil
}

func relTo(scenario, spec string) string {
	var parts []string
	for _, p := range strings.Split(spec, ",") {
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(scenario), p)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ",")
}

// ParseScenario decodes a scenario; unknown fields are errors.
func ParseScenario(b []byte) (*Scenario, error) {
	var sc Scenario
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return nil, err
	}
	return &sc, sc.Validate()
}

// Validate names the first field that cannot work.
func (sc *Scenario) Validate() error {
	pos := func(field string, v float64) error {
		if !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("%s = %v, want > 0", field, v)
		}
		return nil
	}
	nonneg := func(field string, v float64) error {
		if !(v >= 0) || math.IsInf(v, 0) {
			return fmt.Errorf("%s = %v, want >= 0", field, v)
		}
		return nil
	}
	switch {
	case sc.Dataset == "":
		return fmt.Errorf("dataset is missing")
	case sc.Model == "":
		return fmt.Errorf("model is missing")
	case !(sc.TargetAccuracy > 0 && sc.TargetAccuracy <= 1):
		return fmt.Errorf("target_accuracy = %v, want in (0, 1]", sc.TargetAccuracy)
	case len(sc.Workers) == 0:
		return fmt.Errorf("workers is empty")
	}
	if err := pos("time_budget_s", sc.TimeBudgetS); err != nil {
		return err
	}
	checks := []error{pos("ps.gflops", sc.PS.GFLOPS), pos("ps.bandwidth_mbps", sc.PS.BandwidthMbps), nonneg("ps.latency_ms", sc.PS.LatencyMs)}
	for i, g := range sc.Workers {
		f := fmt.Sprintf("workers[%d]", i)
		if g.Name != "" {
			f = fmt.Sprintf("workers[%d] (%s)", i, g.Name)
		}
		if g.Count < 1 {
			return fmt.Errorf("%s.count = %d, want >= 1", f, g.Count)
		}
		checks = append(checks,
			pos(f+".gflops", g.GFLOPS), pos(f+".bandwidth_mbps", g.BandwidthMbps),
			nonneg(f+".latency_ms", g.LatencyMs), nonneg(f+".memory_mb", g.MemoryMB),
			nonneg(f+".leave_at_s", g.LeaveAtS), nonneg(f+".join_at_s", g.JoinAtS),
			nonneg(f+".crash_mtbf_s", g.CrashMTBFS), nonneg(f+".restart_s", g.RestartS))
		if g.LeaveAtS > 0 && g.LeaveAtS <= g.JoinAtS {
			return fmt.Errorf("%s.leave_at_s = %v is not after join_at_s = %v", f, g.LeaveAtS, g.JoinAtS)
		}
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	return nil
}

// NumWorkers returns the number of worker devices.
func (sc *Scenario) NumWorkers() int {
	n := 0
	for _, g := range sc.Workers {
		n += g.Count
	}
	return n
}
