package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	fixImages = "../../testdata/fmnist-1k-images-idx3-ubyte.gz"
)

// lastJSON decodes the last line of out, which --json promises is one JSON
// object.
func lastJSON(t *testing.T, out string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var v map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &v); err != nil {
		t.Fatalf("last stdout line %q: %v", lines[len(lines)-1], err)
	}
	return v
}

func TestTrainSaveEval(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.safetensors")
	var out bytes.Buffer
	err := run([]string{"train", "--train", fixImages, "--test", fixImages, "--model", "logreg",
		"--epochs", "3", "--batch", "16", "--lr", "0.01", "--save", model, "--json"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	res := lastJSON(t, out.String())
	for _, k := range []string{"model", "dataset", "epochs", "test_accuracy", "test_loss", "samples_per_second", "wall_seconds"} {
		if _, ok := res[k]; !ok {
			t.Errorf("JSON lacks %q: %v", k, res)
		}
	}
	// Logistic regression fits 1,000 Fashion-MNIST images well above chance.
	acc := res["test_accuracy"].(float64)
	if acc < 0.75 {
		t.Fatalf("training accuracy %v on its own training data", acc)
	}
	out.Reset()
	if err := run([]string{"eval", "--model-file", model, "--test", fixImages, "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	ev := lastJSON(t, out.String())
	if ev["test_accuracy"] != acc {
		t.Fatalf("eval of the saved model: %v, train reported %v", ev["test_accuracy"], acc)
	}
}

func TestTrainIsDeterministic(t *testing.T) {
	args := []string{"train", "--train", fixImages, "--test", fixImages, "--model", "mlp", "--epochs", "1", "--threads", "1", "--json"}
	var a, b bytes.Buffer
	if err := run(args, &a); err != nil {
		t.Fatal(err)
	}
	if err := run(args, &b); err != nil {
		t.Fatal(err)
	}
	ra, rb := lastJSON(t, a.String()), lastJSON(t, b.String())
	if ra["test_loss"] != rb["test_loss"] {
		t.Fatalf("same seed, losses %v and %v", ra["test_loss"], rb["test_loss"])
	}
}

// hermesBinary builds the command once for the tests that check exit codes.
func hermesBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hermes")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func TestBadInputExitsWithOneLine(t *testing.T) {
	bin := hermesBinary(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	trunc := write("trunc-images-idx3-ubyte", "\x00\x00\x08\x03\x00\x00\x00\x05\x00\x00\x00\x1c\x00\x00\x00\x1c\x01\x02")
	write("trunc-labels-idx1-ubyte", "\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02\x03\x04\x05")
	magic := write("magic-images-idx3-ubyte", "PK\x03\x04 not idx")
	ragged := write("ragged.csv", "1,2,3\n0,1\n")
	neg := write("neg.csv", "1,2,3\n-3,1,1\n")
	good := write("good.csv", "1,2,3\n0,1,1\n")
	spec := write("spec.json", `{"layers":[{"type":"flatten"},{"type":"attention"}]}`)
	shape := write("shape.json", `{"layers":[{"type":"dense","units":4},{"type":"dense","units":3}]}`)
	weights := filepath.Join(dir, "w.safetensors")
	if out, err := exec.Command(bin, "train", "--train", good, "--test", good, "--model", "logreg", "--epochs", "1", "--save", weights).CombinedOutput(); err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	const pub = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"
	bare := write("bare.users", "# a key without its name\n"+pub+"\n")
	seedLine := write("seed.users", "pi SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU\n")
	twice := write("twice.users", "pi1 "+pub+"\npi2 "+pub+"\n")
	named := write("named.users", "pi1 "+pub+"\n")
	held := filepath.Join(dir, "held")
	os.MkdirAll(held, 0o755)
	write("held/checkpoint.gob", "a run's state")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	ps := func(extra ...string) []string {
		return append([]string{"ps", "--train", fixImages, "--test", fixImages, "--model", "logreg", "--val", "200"}, extra...)
	}
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"resume without a run dir", ps("--resume"), []string{"--resume needs --run-dir"}},
		{"unknown GEMM kernel", []string{"bench", "engine", "--isa", "sse9"}, []string{"--isa", `"sse9"`, "this CPU runs"}},
		{"resume without a checkpoint", ps("--resume", "--run-dir", filepath.Join(dir, "empty")), []string{"no checkpoint in", "empty"}},
		{"new run over a checkpoint", ps("--run-dir", held), []string{held, "holds a run already"}},
		{"not a users file", ps("--nkey-file", good), []string{good + ":1", "want NAME UPUBKEY"}},
		{"key without a name", ps("--nkey-file", bare), []string{bare + ":2", "want NAME UPUBKEY", "hermes keygen --name NAME"}},
		{"seed as public key", ps("--nkey-file", seedLine), []string{seedLine + ":1", "not a public user nkey"}},
		{"one key, two names", ps("--nkey-file", twice), []string{twice + ":2", "bound on line 1"}},
		{"nats config without the server's key", ps("--print-nats-config", "--nkey-file", named), []string{"no user named ps", "hermes keygen --name ps"}},
		{"keygen without a name", []string{"keygen", "--seed-file", filepath.Join(dir, "new.nk")}, []string{"--name"}},
		{"port taken", ps("--listen", taken.Addr().String(), "--run-dir", filepath.Join(dir, "taken")), []string{"--listen", taken.Addr().String(), "address already in use"}},
		{"short worker timeout", ps("--worker-timeout", "1s"), []string{"--worker-timeout 1s", "at least 2s"}},
		{"keygen over a file", []string{"keygen", "--name", "pi", "--seed-file", good}, []string{good, "file exists"}},
		{"truncated idx", []string{"train", "--train", trunc, "--test", trunc}, []string{trunc, "truncated"}},
		{"wrong magic", []string{"train", "--train", magic, "--test", magic}, []string{magic, "bad magic"}},
		{"ragged csv", []string{"train", "--train", ragged, "--test", good}, []string{ragged + ":2", "2 fields, want 3"}},
		{"label out of range", []string{"train", "--train", neg, "--test", good}, []string{neg, "label -3 out of range"}},
		{"unknown layer", []string{"train", "--train", good, "--test", good, "--model", spec}, []string{spec, `unknown layer type "attention"`}},
		{"mismatched shapes", []string{"train", "--train", good, "--test", good, "--model", shape}, []string{"output shape [3]", "2 classes"}},
		{"weights of wrong shape", []string{"train", "--train", fixImages, "--test", fixImages, "--model", "logreg", "--init", weights}, []string{weights, "layers.1.weight", "shape [2 2]"}},
		{"bad flag value", []string{"train", "--train", good, "--test", good, "--epochs", "0"}, []string{"epochs = 0"}},
		{"ps without data", []string{"ps"}, []string{"no data"}},
		{"worker without a server", []string{"worker", "--ps", "nats://127.0.0.1:1", "--name", "x", "--give-up", "1s"}, []string{"worker x", "connect nats://127.0.0.1:1"}},
		{"worker with a bad slowdown", []string{"worker", "--slowdown", "0.5"}, []string{"slowdown = 0.5"}},
		{"calibrate, batches out of order", []string{"calibrate", "--batches", "16,8"}, []string{"--batches", `"16,8"`, `"8"`, "above the one before it"}},
		{"calibrate, one batch", []string{"calibrate", "--batches", "16"}, []string{"--batches", "at least two"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { expectErrorLine(t, bin, c.args, false, c.want...) })
	}
}

// expectErrorLine runs the binary, which must exit 1 with a last stderr
// line "hermes: ..." that mentions every want (and, when only, print
// nothing else on stderr).
func expectErrorLine(t *testing.T, bin string, args []string, only bool, want ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1; stderr %q", err, stderr.String())
	}
	msg := strings.TrimSpace(stderr.String())
	lines := strings.Split(msg, "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "hermes: ") || strings.Contains(msg, "panic") || (only && len(lines) > 1) {
		t.Fatalf("stderr %q, want one 'hermes: ...' error line", msg)
	}
	for _, w := range want {
		if !strings.Contains(last, w) {
			t.Errorf("error %q does not mention %q", last, w)
		}
	}
}

const tinyScenario = "../../sim/testdata/tiny.json"

func TestBenchWritesReport(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	err := run([]string{"bench", "--scenario", tinyScenario, "--policies", "hermes,bsp", "--out", dir,
		"--chunk", "100", "--min-chunk", "10", "--local-epochs", "2", "--val", "200", "--json"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	res := lastJSON(t, out.String())
	if res["scenario"] != "tiny" {
		t.Fatalf("scenario %v", res["scenario"])
	}
	results := res["results"].([]any)
	if len(results) != 2 {
		t.Fatalf("%d results", len(results))
	}
	for _, r := range results {
		m := r.(map[string]any)
		for _, k := range []string{"policy", "reached_target", "time_to_target_s", "bytes_to_target", "updates_to_target",
			"final_accuracy", "best_accuracy", "virtual_seconds", "wall_seconds", "bytes_total", "updates_total"} {
			if _, ok := m[k]; !ok {
				t.Errorf("result lacks %q", k)
			}
		}
	}
	for _, f := range []string{"results.json", "points.csv", "report.md", "accuracy.png", "accuracy.svg", "bytes.png",
		"chunks.png", "minibatch.svg", "gate.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	if !strings.Contains(string(md), "![") || !strings.Contains(string(md), "| hermes |") {
		t.Errorf("report.md lacks the table or the plots:\n%s", md)
	}
	// report.html stands alone: the plots inline, nothing to fetch.
	page, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	html := string(page)
	if n := strings.Count(html, "<svg"); n != 5 || !strings.Contains(html, "<td>hermes</td>") || !strings.Contains(html, "<td>bsp</td>") {
		t.Errorf("report.html: %d inline plots, want 5, and a row per policy", n)
	}
	for _, external := range []string{"src=", "href=", "<link", "@import", "url("} {
		if strings.Contains(html, external) {
			t.Errorf("report.html refers to something outside it (%s)", external)
		}
	}
}

func TestSimScenarioErrors(t *testing.T) {
	bin := hermesBinary(t)
	dir := t.TempDir()
	base, err := os.ReadFile(tinyScenario)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	unknown := write("unknown.json", strings.Replace(string(base), `"seed": 3`, `"seed": 3, "sead": 4`, 1))
	zero := write("zero.json", strings.Replace(string(base), `"gflops": 0.05`, `"gflops": 0`, 1))
	missing := write("missing.json", strings.Replace(string(base), "fmnist-1k-images", "no-such-images", 2))
	cases := []struct {
		file string
		want []string
	}{
		{unknown, []string{unknown, `unknown field "sead"`}},
		{zero, []string{zero, "workers[0] (slow).gflops = 0"}},
		{missing, []string{"no-such-images"}},
	}
	for _, c := range cases {
		cmd := exec.Command(bin, "sim", "--scenario", c.file, "--json")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err == nil {
			t.Fatalf("%s: exit 0", c.file)
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		last := lines[len(lines)-1]
		for _, w := range c.want {
			if !strings.Contains(last, w) {
				t.Errorf("error %q does not mention %q", last, w)
			}
		}
	}
}

// The one-command experience, on the fixture: a server and three worker
// processes of unequal speed, each with a key of its own, reach the target
// and print the summary.
func TestDemo(t *testing.T) {
	bin := hermesBinary(t)
	runDir := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(bin, "demo", "--train", fixImages, "--test", fixImages, "--model", "logreg", "--val", "200",
		"--chunk", "100", "--min-chunk", "50", "--local-epochs", "2", "--target", "0.7", "--slowdowns", "1,2.5,3", "--run-dir", runDir, "--json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("demo: %v\n%s", err, stderr.String())
	}
	res := lastJSON(t, stdout.String())
	if res["reached_target"] != true || res["workers"] != 3.0 || res["auth"] != "nkey" || res["updates_total"].(float64) < 1 || res["bytes_total"].(float64) <= 0 {
		t.Fatalf("summary %v", res)
	}
	for _, k := range []string{"final_accuracy", "wall_seconds", "train_seconds"} {
		if _, ok := res[k]; !ok {
			t.Errorf("summary lacks %q", k)
		}
	}
	// The demo's wall time counts the workers' start-up and joins; its
	// training time starts at the first chunk.
	if tr, w := res["train_seconds"].(float64), res["wall_seconds"].(float64); !(tr > 0 && tr < w) {
		t.Errorf("train_seconds %v, wall_seconds %v: want 0 < train < wall", tr, w)
	}

	// The finished run, replayed: its dashboard's state is the run's.
	addr := freeLoopback(t)
	replay := exec.Command(bin, "replay", "--run-dir", runDir, "--http", addr)
	if err := replay.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { replay.Process.Kill(); replay.Wait() }()
	var state struct {
		Accuracy float64
		Stopped  string
		Workers  []struct{ Name string }
	}
	for i := 0; ; i++ {
		r, err := http.Get("http://" + addr + "/api/state")
		if err == nil {
			err = json.NewDecoder(r.Body).Decode(&state)
			r.Body.Close()
			break
		}
		if i == 100 {
			t.Fatalf("replay: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if state.Accuracy != res["final_accuracy"] || state.Stopped != "target accuracy" || len(state.Workers) != 3 {
		t.Fatalf("replayed state %+v, the run's summary %v", state, res)
	}
}

// On a terminal the demo's table is redrawn in place; elsewhere appended.
func TestLiveTable(t *testing.T) {
	var term, pipe bytes.Buffer
	a, b := liveTable{w: &term, redraw: true}, liveTable{w: &pipe}
	for _, text := range []string{"v1\nw0\n", "v2\nw0\nw1\n"} {
		a.show(text)
		b.show(text)
	}
	if got := term.String(); got != "v1\nw0\n\x1b[2A\x1b[Jv2\nw0\nw1\n" {
		t.Fatalf("terminal got %q", got)
	}
	if got := pipe.String(); got != "v1\nw0\nv2\nw0\nw1\n" {
		t.Fatalf("pipe got %q", got)
	}
}
