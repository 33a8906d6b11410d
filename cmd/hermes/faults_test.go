package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitFor polls file until it contains want.
func waitFor(t *testing.T, file, want string, limit time.Duration) {
	t.Helper()
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(file); err == nil && bytes.Contains(b, []byte(want)) {
			return
		}
	}
	b, _ := os.ReadFile(file)
	t.Fatalf("%s: no %q after %v:\n%s", file, want, limit, b)
}

// freeLoopback returns a loopback address with a port free at the time of
// the call, for a process to listen on.
func freeLoopback(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// fixturePS returns a starter of `hermes ps` processes on the fixture
// (logistic regression, small chunks) at addr with the run dir dir, the
// given flags and, per start, extra ones; each is killed at the end of the
// test. Its stdout is the returned buffer.
func fixturePS(t *testing.T, bin, addr, dir string, flags ...string) func(extra ...string) (*exec.Cmd, *bytes.Buffer) {
	return func(extra ...string) (*exec.Cmd, *bytes.Buffer) {
		args := append([]string{"ps", "--train", fixImages, "--test", fixImages, "--model", "logreg", "--val", "200",
			"--chunk", "100", "--min-chunk", "50", "--local-epochs", "2", "--listen", addr, "--run-dir", dir, "--json"}, flags...)
		cmd := exec.Command(bin, append(args, extra...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		return cmd, &out
	}
}

// Real processes, real signals. Of three workers, one is killed with
// SIGKILL mid-run and started again (it rejoins; its chunks go back to the
// queue), another is killed for good (it is timed out). Then the server
// gets SIGTERM: it checkpoints and exits, and `hermes ps --resume`
// continues the same run, its version counting on, with the surviving
// workers reconnecting by themselves. The chunk accounting adds up.
func TestKillWorkerAndResume(t *testing.T) {
	bin := hermesBinary(t)
	dir, addr := filepath.Join(t.TempDir(), "run"), freeLoopback(t)
	ps := fixturePS(t, bin, addr, dir, "--min-workers", "3", "--worker-timeout", "3s")
	worker := func(name string) *exec.Cmd {
		cmd := exec.Command(bin, "worker", "--ps", "nats://"+addr, "--name", name, "--slowdown", "20", "--give-up", "1m")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	psLog := filepath.Join(dir, "nodes", "ps.jsonl")

	first, out1 := ps("--target", "0.99", "--patience", "1000000")
	workers := map[string]*exec.Cmd{}
	for _, n := range []string{"w0", "w1", "w2"} {
		workers[n] = worker(n)
	}
	waitFor(t, filepath.Join(dir, "nodes", "w1.jsonl"), "chunk trained", time.Minute)
	workers["w1"].Process.Signal(syscall.SIGKILL)
	workers["w1"].Wait()
	workers["w1"] = worker("w1")
	waitFor(t, psLog, `"msg":"worker rejoined; its previous session is dropped","node":"ps","worker":"w1"`, time.Minute)
	workers["w2"].Process.Signal(syscall.SIGKILL)
	waitFor(t, psLog, `"msg":"worker timed out","node":"ps","worker":"w2"`, time.Minute)

	first.Process.Signal(syscall.SIGTERM)
	if err := first.Wait(); err != nil {
		t.Fatalf("ps after SIGTERM: %v", err)
	}
	res1 := lastJSON(t, out1.String())
	if res1["stop_reason"] != "interrupted" || res1["version"].(float64) < 1 {
		t.Fatalf("interrupted run: %v", res1)
	}

	// A resumed run waits for --min-workers again: the two survivors.
	second, out2 := ps("--resume", "--target", "0.7", "--min-workers", "2")
	if err := second.Wait(); err != nil {
		t.Fatalf("resumed ps: %v\n%s", err, out2)
	}
	for _, n := range []string{"w0", "w1"} {
		if err := workers[n].Wait(); err != nil {
			t.Errorf("worker %s: %v", n, err)
		}
	}
	res := lastJSON(t, out2.String())
	t.Logf("interrupted at version %v; resumed run: reached %v at version %v, lost %v, chunks %v, w1 joins %v",
		res1["version"], res["reached_target"], res["version"], res["lost_workers"], res["chunks"], res["per_worker"].(map[string]any)["w1"])
	v1 := res1["version"].(float64)
	if res["reached_target"] != true || res["resumed_from"] != v1 || res["version"].(float64) <= v1 {
		t.Fatalf("resumed run: %v (interrupted at version %v)", res, v1)
	}
	c := res["chunks"].(map[string]any)
	if c["cut"] != c["acked"].(float64)+c["outstanding"].(float64)+c["queued"].(float64) || c["returned"].(float64) < 1 {
		t.Fatalf("chunk accounting %v", c)
	}
	if res["lost_workers"].(float64) < 1 {
		t.Fatalf("the killed worker was not timed out: %v", res)
	}
	per := res["per_worker"].(map[string]any)
	if j := per["w1"].(map[string]any)["joins"].(float64); j < 3 {
		t.Errorf("w1 joined %v times, want 3 (start, restart, server resume)", j)
	}
	if _, err := os.Stat(dir + ".tar.gz"); err != nil {
		t.Error(err)
	}
	b, _ := os.ReadFile(psLog)
	if !strings.Contains(string(b), fmt.Sprintf(`"msg":"resumed","node":"ps","run_dir":%q,"version":%v`, dir, v1)) {
		t.Errorf("no resume event at version %v in the server's log", v1)
	}
}

// Real processes: the server is killed with SIGKILL mid-run, with no
// chance to save anything; `hermes ps --resume` continues from the last
// periodic checkpoint (--checkpoint-every 2s, written off the loop and
// fsynced), the workers come back by themselves, the run reaches its
// target, and the chunk accounting adds up.
func TestKillServerAndResume(t *testing.T) {
	bin := hermesBinary(t)
	dir, addr := filepath.Join(t.TempDir(), "run"), freeLoopback(t)
	ps := fixturePS(t, bin, addr, dir, "--min-workers", "2", "--checkpoint-every", "2s")
	var workers []*exec.Cmd
	for _, n := range []string{"w0", "w1"} {
		cmd := exec.Command(bin, "worker", "--ps", "nats://"+addr, "--name", n, "--slowdown", "20", "--give-up", "1m")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		workers = append(workers, cmd)
	}
	psLog := filepath.Join(dir, "nodes", "ps.jsonl")
	first, _ := ps("--target", "0.99", "--patience", "1000000")
	waitFor(t, psLog, `"msg":"checkpoint"`, time.Minute)
	first.Process.Signal(syscall.SIGKILL)
	first.Wait()
	// The last checkpoint the log saw written; the file may be newer.
	var saved float64
	b, _ := os.ReadFile(psLog)
	for _, line := range strings.Split(string(b), "\n") {
		var ev struct {
			Msg     string
			Version float64
		}
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Msg == "checkpoint" {
			saved = ev.Version
		}
	}

	second, out := ps("--resume", "--target", "0.7")
	if err := second.Wait(); err != nil {
		t.Fatalf("resumed ps: %v\n%s", err, out)
	}
	for i, w := range workers {
		if err := w.Wait(); err != nil {
			t.Errorf("worker w%d: %v", i, err)
		}
	}
	res := lastJSON(t, out.String())
	t.Logf("killed after a checkpoint at version %v; resumed from %v: reached %v at version %v, chunks %v",
		saved, res["resumed_from"], res["reached_target"], res["version"], res["chunks"])
	if res["reached_target"] != true || res["resumed_from"].(float64) < max(saved, 1) || res["version"].(float64) <= res["resumed_from"].(float64) {
		t.Fatalf("resumed run: %v (checkpoint at version %v)", res, saved)
	}
	c := res["chunks"].(map[string]any)
	if c["cut"] != c["acked"].(float64)+c["outstanding"].(float64)+c["queued"].(float64) {
		t.Fatalf("chunk accounting %v", c)
	}
	for name, w := range res["per_worker"].(map[string]any) {
		if j := w.(map[string]any)["joins"].(float64); j < 2 {
			t.Errorf("%s joined %v times, want a rejoin after the server came back", name, j)
		}
	}
}
