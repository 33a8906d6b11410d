package cluster

import (
	"sync"
	"time"

	"github.com/hermes-go/hermes/data"
	"github.com/hermes-go/hermes/nn"
	"github.com/hermes-go/hermes/protocol"
)

// meter measures test accuracy on its own goroutine and model. Test
// accuracy is the harness's business, not the protocol's: measured on the
// server's loop it would hold up every worker for a pass over the test set
// (0.2 s for the MLP on Fashion-MNIST), a cost the simulator rightly does
// not charge. When changes come faster than passes, the newest snapshot
// replaces a waiting one.
type meter struct {
	model  *nn.Model
	test   *data.Dataset
	next   chan snapshot
	done   chan measurement
	quit   chan struct{}
	exited chan struct{}
	once   sync.Once
}

// snapshot is a version of the global model, taken at run time at.
type snapshot struct {
	version int64
	at      time.Duration
	params  []float32
}

type measurement struct {
	snapshot
	accuracy float64
}

func newMeter(spec nn.Spec, test *data.Dataset) (*meter, error) {
	m, err := nn.Build(spec, test.Shape, test.Classes)
	if err != nil {
		return nil, err
	}
	mt := &meter{model: m, test: test, next: make(chan snapshot, 1), done: make(chan measurement, 1),
		quit: make(chan struct{}), exited: make(chan struct{})}
	go mt.loop()
	return mt, nil
}

// submit queues a copy of s's parameters for measurement, replacing one
// that waits.
func (mt *meter) submit(s snapshot) {
	s.params = append([]float32(nil), s.params...)
	for {
		select {
		case mt.next <- s:
			return
		default:
		}
		select {
		case <-mt.next:
		default:
		}
	}
}

func (mt *meter) loop() {
	defer close(mt.exited)
	for {
		select {
		case <-mt.quit:
			return
		case s := <-mt.next:
			m := mt.measure(s)
			select {
			case mt.done <- m:
			case <-mt.quit:
				return
			}
		}
	}
}

// measure evaluates s on the test set: on the loop, or by the caller once
// stop has returned.
func (mt *meter) measure(s snapshot) measurement {
	copy(mt.model.Params(), s.params)
	_, acc := mt.model.Evaluate(mt.test.X, mt.test.Y, mt.test.Len(), 500)
	return measurement{snapshot: s, accuracy: acc}
}

// stop ends the loop and waits for it, dropping what it had not measured.
func (mt *meter) stop() {
	mt.once.Do(func() { close(mt.quit) })
	<-mt.exited
}

// timedValidator is the server's validator, timed: what its passes took
// since the last take is logged with each global-model change.
type timedValidator struct {
	v     protocol.Validator
	spent time.Duration
}

// ValidationLoss implements protocol.Validator.
func (t *timedValidator) ValidationLoss(params []float32) float64 {
	start := time.Now()
	loss := t.v.ValidationLoss(params)
	t.spent += time.Since(start)
	return loss
}

// take returns the time spent since the last take.
func (t *timedValidator) take() time.Duration {
	d := t.spent
	t.spent = 0
	return d
}
