package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hermes-go/hermes/cluster"
)

func cmdLoadtest(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	url := fs.String("ps", "nats://127.0.0.1:4222", "NATS URL of the parameter server (an asynchronous policy: hermes, asp)")
	workers := fs.Int("workers", 10, "synthetic workers, each its own connection and name (load-0, load-1, ...)")
	rate := fs.Float64("rate", 1, "updates per second per worker, at most")
	duration := fs.Duration("duration", 10*time.Second, "how long to send")
	psPID := fs.Int("ps-pid", 0, "the server's process id, to report its memory (a server on this machine)")
	token := fs.String("token", os.Getenv("HERMES_TOKEN"), "the server's shared secret (default $HERMES_TOKEN)")
	asJSON := fs.Bool("json", false, "print one JSON object as the last line of stdout")
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := cluster.LoadTest(ctx, cluster.LoadConfig{URL: *url, Workers: *workers, Rate: *rate, Duration: *duration,
		Security: cluster.Security{Token: *token}})
	if err != nil {
		return err
	}
	out := struct {
		cluster.LoadResult
		ServerRSSMB  float64 `json:"server_rss_mb,omitempty"`
		ServerPeakMB float64 `json:"server_peak_rss_mb,omitempty"`
	}{LoadResult: res}
	if *psPID > 0 {
		if out.ServerRSSMB, out.ServerPeakMB, err = processMemoryMB(*psPID); err != nil {
			return fmt.Errorf("--ps-pid %d: %w", *psPID, err)
		}
	}
	if *asJSON {
		return printJSON(stdout, out)
	}
	fmt.Fprintf(stdout, "%d workers, %.1f s: %d updates sent, %d answered, %d dropped; %.1f updates/s; send to merge p50 %.2f ms, p99 %.2f ms",
		res.Workers, res.Seconds, res.Sent, res.Answered, res.Dropped, res.UpdatesPerSec, res.P50Ms, res.P99Ms)
	if *psPID > 0 {
		fmt.Fprintf(stdout, "; server RSS %.0f MB (peak %.0f MB)", out.ServerRSSMB, out.ServerPeakMB)
	}
	fmt.Fprintln(stdout)
	return nil
}

// processMemoryMB reads a process's resident and peak resident memory
// from /proc.
func processMemoryMB(pid int) (rss, peak float64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return rss, peak, nil
}
