package bench

import (
	"math"
	"testing"
	"time"
)

func TestFitLine(t *testing.T) {
	slope, icpt := fitLine([]float64{1, 2, 4, 8}, []float64{5, 7, 11, 19})
	if math.Abs(slope-2) > 1e-12 || math.Abs(icpt-3) > 1e-12 {
		t.Fatalf("slope %v, intercept %v; want 2, 3", slope, icpt)
	}
	if sig3(0.0012345) != 0.00123 || sig3(25.99895) != 26 || sig3(0) != 0 {
		t.Fatal("sig3")
	}
}

// Calibration measures every mini-batch and message size asked for and
// fits a device the simulator accepts.
func TestCalibrateFitsADevice(t *testing.T) {
	c := CalibrateConfig{Model: "logreg", Batches: []int{1, 16, 64}, Sizes: []int{1 << 10, 256 << 10}, PerSize: 3, Budget: 30 * time.Millisecond}
	cal, err := Calibrate(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(cal.Steps) != 3 || len(cal.Messages) != 2 || cal.TransportProbed {
		t.Fatalf("%+v", cal)
	}
	d := cal.Device
	d.BandwidthMbps = 1
	if err := d.Validate(); err != nil || !(d.GFLOPS > 0) {
		t.Fatalf("device %+v: %v", d, err)
	}
	for i, p := range d.StepTimes {
		if p.Batch != c.Batches[i] || math.Abs(p.Ms-cal.Steps[i].Seconds*1e3) > 0.01*p.Ms {
			t.Fatalf("step times %+v, measured %+v", d.StepTimes, cal.Steps)
		}
	}
	if len(d.StepTimes) != len(c.Batches) {
		t.Fatalf("step times %+v for mini-batches %v", d.StepTimes, c.Batches)
	}
	if _, err := Calibrate(CalibrateConfig{Model: "resnet"}); err == nil {
		t.Fatal("an unknown model was calibrated")
	}
}
