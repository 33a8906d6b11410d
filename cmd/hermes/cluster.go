package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/hermes-go/hermes/cluster"
	"github.com/hermes-go/hermes/dashboard"
	"github.com/hermes-go/hermes/harness"
	"github.com/hermes-go/hermes/protocol"
)

// psFlags are the flags of `hermes ps` that `hermes demo` shares.
type psFlags struct {
	df        dataFlags
	model     string
	inputNorm string
	seed      uint64
	target    float64
	valSize   int
	localLR   float64
	listen    string
	natsURL   string
	sec       securityFlags
	nkeyFile  string
	users     []cluster.NKeyUser // the demo's own, without a file
	printNATS bool
	runDir    string
	resume    bool
	timeout   time.Duration
	ckptEvery time.Duration
	http      httpFlags
	asJSON    bool
	settings  *protocol.Settings
}

// securityFlags are the credential and TLS flags of ps, worker and demo.
type securityFlags struct{ token, nkeySeed, tlsCert, tlsKey, tlsCA string }

func (s *securityFlags) register(fs *flag.FlagSet, server bool) {
	fs.StringVar(&s.token, "token", os.Getenv("HERMES_TOKEN"), map[bool]string{
		true:  "shared secret every client must present (default $HERMES_TOKEN)",
		false: "the server's shared secret (default $HERMES_TOKEN)",
	}[server])
	fs.StringVar(&s.tlsCA, "tls-ca", "", map[bool]string{
		true:  "CA file: require every client to present a certificate it signed (mutual TLS)",
		false: "CA file that signed the server's certificate",
	}[server])
	fs.StringVar(&s.tlsCert, "tls-cert", "", map[bool]string{
		true:  "serve TLS with this certificate (PEM)",
		false: "client certificate (PEM), for a server that requires one",
	}[server])
	fs.StringVar(&s.tlsKey, "tls-key", "", "key of --tls-cert (PEM)")
	fs.StringVar(&s.nkeySeed, "nkey-seed", "", map[bool]string{
		true:  "nkey seed file to present to an external NATS (--nats)",
		false: "nkey seed file to authenticate with (hermes keygen makes one)",
	}[server])
}

func (s *securityFlags) security() cluster.Security {
	return cluster.Security{Token: s.token, NKeySeed: s.nkeySeed, TLSCert: s.tlsCert, TLSKey: s.tlsKey, TLSCA: s.tlsCA}
}

func (f *psFlags) register(fs *flag.FlagSet, args []string) error {
	f.df.register(fs)
	fs.StringVar(&f.model, "model", "mlp", modelUsage)
	fs.StringVar(&f.inputNorm, "input-norm", "", "MEAN,STD: normalize inputs in [0, 1] by these (default: the training set's; ONNX models: none)")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of initialization, data order and splits")
	fs.Float64Var(&f.target, "target", 0.85, "stop when the test accuracy reaches this (0: never)")
	fs.IntVar(&f.valSize, "val", 5000, "validation samples carved from the training set")
	fs.Float64Var(&f.localLR, "local-lr", 0, "workers' SGD learning rate (0: the policy's tuned value)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:4222", "address of the embedded NATS server")
	fs.StringVar(&f.natsURL, "nats", "", "use this NATS server instead of an embedded one")
	f.sec.register(fs, true)
	fs.StringVar(&f.nkeyFile, "nkey-file", "", "admit only these workers: lines of NAME UPUBKEY (hermes keygen --name prints them); each may act only as its NAME")
	fs.BoolVar(&f.printNATS, "print-nats-config", false, "print the nats-server configuration that gives an external NATS the users and permissions of --nkey-file, and exit")
	fs.StringVar(&f.runDir, "run-dir", "", "keep checkpoint, final model, summary and logs here (default runs/COMMAND-TIME)")
	fs.BoolVar(&f.resume, "resume", false, "continue the run checkpointed in --run-dir")
	fs.DurationVar(&f.timeout, "worker-timeout", 10*time.Second, "take a worker silent this long for gone and hand its chunks out again")
	f.http.register(fs, "")
	fs.DurationVar(&f.ckptEvery, "checkpoint-every", 30*time.Second, "checkpoint the run this often (and on SIGTERM), off the server's loop")
	fs.BoolVar(&f.asJSON, "json", false, "print one JSON object as the last line of stdout")
	st, err := settingsFlags(fs, args)
	if err != nil {
		return err
	}
	fs.StringVar(&st.Policy, "policy", st.Policy, "training policy: "+strings.Join(protocol.PolicyNames(), ", "))
	f.settings = st
	return nil
}

// start loads the data and starts the parameter server.
func (f *psFlags) start(fs *flag.FlagSet, onApplied func(cluster.Status), log *slog.Logger) (*cluster.PS, error) {
	if err := f.settings.Validate(); err != nil {
		return nil, err
	}
	if f.timeout < 2*time.Second {
		return nil, fmt.Errorf("--worker-timeout %v: want at least 2s (workers heartbeat every second)", f.timeout)
	}
	if f.ckptEvery < time.Second {
		return nil, fmt.Errorf("--checkpoint-every %v: want at least 1s", f.ckptEvery)
	}
	sec, err := f.security()
	if err != nil {
		return nil, err
	}
	if f.runDir, err = cluster.PrepareRunDir(f.runDir, fs.Name(), f.resume); err != nil {
		return nil, err
	}
	d, err := harness.OpenData(f.df.dataset, f.df.train, f.df.test, f.valSize, f.seed)
	if err != nil {
		return nil, err
	}
	norms, err := harness.ParseNorm(f.inputNorm)
	if err != nil {
		return nil, err
	}
	mm, err := harness.ResolveModel(f.model, d.Train.Classes, norms)
	if err != nil {
		return nil, err
	}
	d.UseNorm(mm)
	h := hyperFor(fs, f.settings, f.localLR, f.settings.Policy)
	st := *f.settings
	h.Apply(&st)
	st.SampleBytes = harness.SampleBytes(d.Train)
	cfg := cluster.PSConfig{Settings: st, LocalLR: h.LocalLR, Train: d.Train, Val: d.Val, Test: d.Test,
		Spec: mm.Spec, InitParams: mm.Params, ModelMeta: d.Norm.Meta(), Norm: d.Norm, Seed: f.seed, Target: f.target, NATS: f.natsURL, Listen: f.listen,
		Security: sec, RunDir: f.runDir, Resume: f.resume, Timeout: f.timeout, CheckpointEvery: f.ckptEvery, OnApplied: onApplied, Log: log}
	var state *dashboard.State
	if f.http.addr != "" {
		state = dashboard.NewState()
		cfg.Events = state.Apply
	}
	ps, err := cluster.StartPS(cfg)
	if err != nil || state == nil {
		return ps, err
	}
	url, err := f.http.serve(state, f.sec)
	if err != nil {
		ps.Close()
		return nil, err
	}
	if f.http.token != "" {
		slog.Info("dashboard", "url", url+"?token=…", "metrics", url+"metrics", "auth", "bearer token (--http-token)")
	} else {
		slog.Info("dashboard", "url", url, "metrics", url+"metrics")
	}
	return ps, nil
}

// httpFlags are the dashboard's flags of ps, demo and replay.
type httpFlags struct{ addr, token string }

func (h *httpFlags) register(fs *flag.FlagSet, def string) {
	fs.StringVar(&h.addr, "http", def, "serve the live dashboard, /metrics and /api/state on this address (loopback unless --http-token or TLS)")
	fs.StringVar(&h.token, "http-token", os.Getenv("HERMES_HTTP_TOKEN"), "bearer token the dashboard requires (default $HERMES_HTTP_TOKEN)")
}

// serve serves the dashboard of state until the process ends, with the
// TLS certificate of sec if there is one, and returns its URL.
func (h *httpFlags) serve(state *dashboard.State, sec securityFlags) (string, error) {
	o := dashboard.Options{Token: h.token, TLSCert: sec.tlsCert, TLSKey: sec.tlsKey}
	l, err := dashboard.Listen(h.addr, o)
	if err != nil {
		return "", err
	}
	return dashboard.NewServer(state, o).Serve(context.Background(), l), nil
}

// security returns the server's security settings, with the users of
// --nkey-file.
func (f *psFlags) security() (cluster.Security, error) {
	sec := f.sec.security()
	sec.NKeyUsers = f.users
	if f.nkeyFile != "" {
		users, err := cluster.ReadNKeyUsers(f.nkeyFile)
		if err != nil {
			return sec, fmt.Errorf("--nkey-file: %w", err)
		}
		sec.NKeyUsers = users
	}
	return sec, nil
}

func cmdPS(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ps", flag.ContinueOnError)
	var f psFlags
	if err := f.register(fs, args); err != nil {
		return err
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if f.printNATS {
		return f.printNATSConfig(stdout)
	}
	ps, err := f.start(fs, nil, slog.Default())
	if err != nil {
		return err
	}
	defer ps.Close()
	slog.Info("parameter server ready", "nats", ps.URL(), "policy", f.settings.Policy, "min_workers", f.settings.MinWorkers,
		"run_dir", f.runDir, "start_now", fmt.Sprintf("kill -USR1 %d", os.Getpid()))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGUSR1 is the start signal: train with the workers there are.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	go func() {
		for range usr1 {
			ps.Start()
		}
	}()
	sum, err := ps.Run(ctx)
	if err != nil {
		return err
	}
	return printSummary(stdout, sum, f.asJSON)
}

// printNATSConfig prints the configuration of an external nats-server that
// isolates the workers of --nkey-file as the embedded server does.
func (f *psFlags) printNATSConfig(stdout io.Writer) error {
	if f.nkeyFile == "" {
		return fmt.Errorf("--print-nats-config needs --nkey-file: the workers to admit, and the server's own key as the line named ps")
	}
	sec, err := f.security()
	if err != nil {
		return err
	}
	conf, err := cluster.NATSConfig(cluster.NATSConfigOptions{Listen: f.listen, Security: sec})
	if err != nil {
		return err
	}
	_, err = io.WriteString(stdout, conf)
	return err
}

func printSummary(stdout io.Writer, sum cluster.Summary, asJSON bool) error {
	if asJSON {
		return printJSON(stdout, sum)
	}
	fmt.Fprintf(stdout, "reached target: %v (%s), test accuracy %.4f (best %.4f), %.1f s, %d bytes, %d updates, model v%d, %d workers (auth: %s)\n",
		sum.ReachedTarget, sum.StopReason, sum.FinalAccuracy, sum.BestAccuracy, sum.WallSeconds, sum.BytesTotal, sum.UpdatesTotal, sum.Version, sum.Workers, sum.Auth)
	if len(sum.Rejected) > 0 {
		reasons := slices.Sorted(maps.Keys(sum.Rejected))
		fmt.Fprint(stdout, "rejected messages:")
		for _, r := range reasons {
			fmt.Fprintf(stdout, " %s %d", r, sum.Rejected[r])
		}
		fmt.Fprintln(stdout)
	}
	c := sum.Chunks
	fmt.Fprintf(stdout, "chunks: %d cut, %d trained, %d held, %d queued, %d returned by lost workers\n", c.Cut, c.Acked, c.Outstanding, c.Queued, c.Returned)
	names := make([]string, 0, len(sum.PerWorker))
	for n := range sum.PerWorker {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w := sum.PerWorker[n]
		fmt.Fprintf(stdout, "  %-10s chunk %5d  mini-batch %3d  major %3d  minor %3d  last loss %.4f  joins %d\n", n, w.Chunk, w.MiniBatch, w.Major, w.Minor, w.LastLoss, w.Joins)
	}
	switch {
	case sum.Archive != "":
		fmt.Fprintf(stdout, "run dir %s (model.safetensors, events.jsonl, nodes/), archived to %s\n", sum.RunDir, sum.Archive)
	case sum.RunDir != "":
		fmt.Fprintf(stdout, "run dir %s; continue with --resume --run-dir %s\n", sum.RunDir, sum.RunDir)
	}
	return nil
}

func cmdWorker(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	url := fs.String("ps", "nats://127.0.0.1:4222", "NATS URL of the parameter server")
	name := fs.String("name", "", "this worker's name (default: host name and pid)")
	slowdown := fs.Float64("slowdown", 1, "behave like a device this many times slower (sleeps in proportion to compute)")
	memory := fs.Int64("memory-mb", 0, "free memory to report, MiB (0: what the system says)")
	threads := fs.Int("threads", 0, "cores to use (0: all)")
	seed := fs.Uint64("seed", 1, "seed of the local shuffles")
	giveUp := fs.Duration("give-up", 10*time.Minute, "fail after the server has not answered for this long")
	var sec securityFlags
	sec.register(fs, false)
	var h httpFlags
	fs.StringVar(&h.addr, "http", "", "serve this worker's metrics (/metrics) on this address (loopback unless --http-token or TLS)")
	fs.StringVar(&h.token, "http-token", os.Getenv("HERMES_HTTP_TOKEN"), "bearer token the metrics require (default $HERMES_HTTP_TOKEN)")
	if err := parse(fs, args); err != nil {
		return err
	}
	var onTrained func(rows, samples int, took time.Duration)
	if h.addr != "" {
		o := dashboard.Options{Token: h.token} // --tls-cert is the worker's client certificate, not a server's
		l, err := dashboard.Listen(h.addr, o)
		if err != nil {
			return err
		}
		m := dashboard.NewWorkerMetrics(cluster.FreeMemory)
		slog.Info("worker metrics", "url", m.Serve(context.Background(), l, o))
		onTrained = m.Trained
	}
	if err := setThreads(*threads); err != nil {
		return err
	}
	if *slowdown < 1 {
		return fmt.Errorf("worker: slowdown = %v, want >= 1", *slowdown)
	}
	if *name == "" {
		h, _ := os.Hostname()
		*name = cluster.Name(fmt.Sprintf("%.50s-%d", h, os.Getpid()))
	}
	mem := *memory << 20
	if mem == 0 {
		mem = cluster.FreeMemory()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cluster.RunWorker(ctx, cluster.WorkerConfig{URL: *url, Name: *name, Memory: mem, Cores: runtime.GOMAXPROCS(0),
		Slowdown: *slowdown, Seed: *seed, Security: sec.security(), GiveUp: *giveUp, OnTrained: onTrained})
}

func cmdKeygen(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	out := fs.String("seed-file", "", "write the new seed here (mode 0600); required")
	name := fs.String("name", "", "the worker name the key is bound to (ps for the server's own key); required")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("keygen: --seed-file is required")
	}
	if !cluster.ValidName(*name) {
		return fmt.Errorf("keygen: --name %q: want the worker's name (letters, digits, - and _), or ps for the server", *name)
	}
	seed, pub, err := cluster.NewNKey()
	if err != nil {
		return err
	}
	// O_EXCL: an existing seed is somebody's identity; never overwrite it.
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if _, err := f.Write(append(seed, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("keygen: %s: %w", *out, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, *name, pub) // a line of --nkey-file
	return nil
}

func cmdDemo(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var f psFlags
	if err := f.register(fs, args); err != nil {
		return err
	}
	slowdowns := fs.String("slowdowns", "1,2,4,8", "one worker process per value, each that many times slower")
	if err := parse(fs, args); err != nil {
		return err
	}
	if f.df.dataset == "" && f.df.train == "" {
		f.df.dataset = "fashion-mnist"
	}
	var slows []float64
	for _, s := range strings.Split(*slowdowns, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || v < 1 {
			return fmt.Errorf("demo: --slowdowns: %q is not a number >= 1", s)
		}
		slows = append(slows, v)
	}
	if f.sec.nkeySeed != "" || f.nkeyFile != "" || f.sec.tlsCert != "" || f.sec.tlsCA != "" {
		return fmt.Errorf("demo: the demo makes a key for each of its workers; nkey and TLS flags are for hermes ps and hermes worker")
	}
	names := make([]string, len(slows))
	for i, s := range slows {
		names[i] = cluster.Name(fmt.Sprintf("w%d-x%g", i, s))
	}
	// Each worker its own key, bound to its name, as a fleet would run
	// (unless --token asks for the one shared identity). The seeds live
	// outside the run dir, which is archived, and go when the demo ends.
	var seeds []string
	if f.sec.token == "" {
		dir, err := os.MkdirTemp("", "hermes-demo-keys-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		for _, n := range names {
			path := filepath.Join(dir, n+".nk")
			seed, pub, err := cluster.NewNKey()
			if err == nil {
				err = os.WriteFile(path, seed, 0o600)
			}
			if err != nil {
				return fmt.Errorf("demo: key for %s: %w", n, err)
			}
			f.users = append(f.users, cluster.NKeyUser{Name: n, Key: pub})
			seeds = append(seeds, path)
		}
	}
	f.settings.MinWorkers = len(slows)
	listenSet, httpSet := false, false
	fs.Visit(func(fl *flag.Flag) {
		listenSet = listenSet || fl.Name == "listen"
		httpSet = httpSet || fl.Name == "http"
	})
	if !listenSet {
		f.listen = "127.0.0.1:-1" // a free port: the demo must not collide with a running server
	}
	if !httpSet {
		f.http.addr = "127.0.0.1:0" // the dashboard, on a free loopback port
	}
	start := time.Now()
	// The demo's table is its terminal output; events go to the run dir.
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	table := liveTable{w: os.Stderr, redraw: term.IsTerminal(int(os.Stderr.Fd()))}
	ps, err := f.start(fs, func(s cluster.Status) {
		if f.asJSON {
			return
		}
		names := make([]string, 0, len(s.Workers))
		for n := range s.Workers {
			names = append(names, n)
		}
		sort.Strings(names)
		var b strings.Builder
		fmt.Fprintf(&b, "%6.1fs  model v%-5d test accuracy %.4f\n", s.Elapsed.Seconds(), s.Version, s.Accuracy)
		fmt.Fprintf(&b, "  %-10s %6s %4s %6s %6s %8s\n", "worker", "chunk", "mb", "major", "minor", "loss")
		for _, n := range names {
			w := s.Workers[n]
			fmt.Fprintf(&b, "  %-10s %6d %4d %6d %6d %8.4f\n", n, w.Chunk, w.MiniBatch, w.Major, w.Minor, w.LastLoss)
		}
		table.show(b.String())
	}, quiet)
	if err != nil {
		return err
	}
	defer ps.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var procs []*exec.Cmd
	for i, s := range slows {
		threads := max(1, runtime.NumCPU()/len(slows))
		cmd := exec.Command(self, "worker", "--ps", ps.URL(), "--name", names[i],
			"--slowdown", fmt.Sprint(s), "--threads", strconv.Itoa(threads), "--seed", strconv.Itoa(i+1))
		if seeds != nil {
			cmd.Args = append(cmd.Args, "--nkey-seed", seeds[i])
		}
		cmd.Env = append(os.Environ(), "HERMES_TOKEN="+f.sec.token) // not on the command line, where ps shows it
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("demo: start worker: %w", err)
		}
		procs = append(procs, cmd)
	}
	defer func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	}()
	slog.Info("demo", "nats", ps.URL(), "workers", len(slows), "slowdowns", *slowdowns, "target", f.target, "nkeys", seeds != nil)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := ps.Run(ctx)
	if err != nil {
		return err
	}
	sum.WallSeconds = time.Since(start).Seconds()
	return printSummary(stdout, sum, f.asJSON)
}

// liveTable shows the demo's table: redrawn in place on a terminal,
// appended to a log or pipe.
type liveTable struct {
	w      io.Writer
	redraw bool
	lines  int // lines drawn last time
}

func (t *liveTable) show(text string) {
	if t.redraw && t.lines > 0 {
		fmt.Fprintf(t.w, "\x1b[%dA\x1b[J", t.lines) // up, clear to the end
	}
	fmt.Fprint(t.w, text)
	t.lines = strings.Count(text, "\n")
}
