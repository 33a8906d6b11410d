package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/hermes-go/hermes/bench"
	"github.com/hermes-go/hermes/wire"
)

func cmdCalibrate(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("calibrate", flag.ContinueOnError)
	c := bench.CalibrateConfig{Sizes: []int{1 << 10, 64 << 10, 512 << 10, 2 << 20}, PerSize: 40}
	fs.StringVar(&c.Model, "model", "mlp", "built-in model whose training step is timed: logreg, mlp or cnn")
	fs.DurationVar(&c.Budget, "budget", 600*time.Millisecond, "measuring time per mini-batch size")
	batches := fs.String("batches", "1,2,4,8,16,32,64", "mini-batch sizes the step is timed at, ascending (cover the allocator's mini_batches)")
	threads := fs.Int("threads", 1, "cores the engine uses (a device entry is one worker process)")
	transport := fs.String("transport", "nats", "message path measured: nats (an embedded server on loopback, as hermes demo runs) or wire (encoding only)")
	bw := fs.Float64("bandwidth-mbps", 8000, "link bandwidth written into the entry (the network's, not measured)")
	lat := fs.Float64("latency-ms", 0.05, "link latency written into the entry (the network's, not measured)")
	asJSON := fs.Bool("json", false, "print one JSON object as the last line of stdout")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := setThreads(*threads); err != nil {
		return err
	}
	for _, f := range strings.Split(*batches, ",") {
		b, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || b < 1 || b > 4096 || (len(c.Batches) > 0 && b <= c.Batches[len(c.Batches)-1]) {
			return fmt.Errorf("calibrate: --batches %q: %q is not a mini-batch in 1..4096 above the one before it", *batches, f)
		}
		c.Batches = append(c.Batches, b)
	}
	if len(c.Batches) < 2 {
		return fmt.Errorf("calibrate: --batches %q: want at least two sizes (the fit needs two)", *batches)
	}
	switch *transport {
	case "wire":
	case "nats":
		rt, stop, err := natsRoundTrip()
		if err != nil {
			return fmt.Errorf("calibrate: %w", err)
		}
		defer stop()
		c.RoundTrip = rt
	default:
		return fmt.Errorf("calibrate: --transport %q, want nats or wire", *transport)
	}
	cal, err := bench.Calibrate(c)
	if err != nil {
		return err
	}
	cal.Device.BandwidthMbps, cal.Device.LatencyMs = *bw, *lat
	if *asJSON {
		return printJSON(stdout, cal)
	}
	fmt.Fprintf(stdout, "%s training step, %d thread(s), %d train FLOPs per sample:\n", cal.Model, *threads, cal.TrainFLOPs)
	for _, p := range cal.Steps {
		fmt.Fprintf(stdout, "  mini-batch %3d: %8.3f ms a step\n", p.Batch, p.Seconds*1e3)
	}
	fmt.Fprintf(stdout, "one message (%s), one way:\n", *transport)
	for _, p := range cal.Messages {
		fmt.Fprintf(stdout, "  %8d bytes: %8.3f ms\n", p.Bytes, p.Seconds*1e3)
	}
	b, err := json.Marshal(cal.Device)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "device entry (link fields from --bandwidth-mbps and --latency-ms):\n%s\n", b)
	return nil
}

// natsRoundTrip starts a NATS server on loopback and returns a round trip
// through it: the request is published by one connection, decoded by a
// subscriber on another, and answered with an empty reply.
func natsRoundTrip() (func([]byte) (time.Duration, error), func(), error) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true, MaxPayload: 64 << 20})
	if err != nil {
		return nil, nil, err
	}
	go srv.Start()
	if !srv.ReadyForConnections(5 * time.Second) {
		srv.Shutdown()
		return nil, nil, fmt.Errorf("nats server did not start")
	}
	a, err := nats.Connect(srv.ClientURL())
	if err != nil {
		srv.Shutdown()
		return nil, nil, err
	}
	b, err := nats.Connect(srv.ClientURL())
	if err != nil {
		a.Close()
		srv.Shutdown()
		return nil, nil, err
	}
	stop := func() { a.Close(); b.Close(); srv.Shutdown() }
	if _, err := b.Subscribe("calibrate", func(m *nats.Msg) {
		if len(m.Data) > 0 {
			wire.Decode(m.Data) // the receiver's share of the cost
		}
		m.Respond(nil)
	}); err != nil {
		stop()
		return nil, nil, err
	}
	if err := b.Flush(); err != nil {
		stop()
		return nil, nil, err
	}
	rt := func(payload []byte) (time.Duration, error) {
		t0 := time.Now()
		if _, err := a.Request("calibrate", payload, 5*time.Second); err != nil {
			return 0, err
		}
		return time.Since(t0), nil
	}
	return rt, stop, nil
}
