package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/hermes-go/hermes/dashboard"
)

// cmdReplay serves the dashboard of a finished run from its events.jsonl.
func cmdReplay(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	runDir := fs.String("run-dir", "", "the run dir of the run to show (its events.jsonl)")
	var h httpFlags
	h.register(fs, "127.0.0.1:8080")
	var sec securityFlags
	fs.StringVar(&sec.tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM)")
	fs.StringVar(&sec.tlsKey, "tls-key", "", "key of --tls-cert (PEM)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *runDir == "" {
		return fmt.Errorf("replay: --run-dir is required")
	}
	path := filepath.Join(*runDir, "events.jsonl")
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	state := dashboard.NewState()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	lines := 0
	for sc.Scan() {
		state.Apply(sc.Bytes())
		lines++
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("replay: %s: %w", path, err)
	}
	url, err := h.serve(state, sec)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d events; dashboard at %s (Ctrl-C ends)\n", path, lines, url)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}
