package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Real processes: hermes keygen makes a key bound to a name; a server
// admits the workers of the users file; a worker that presents its key
// under another name is refused with one line and exit 1, while the run
// goes on with the worker under its own name. --print-nats-config prints
// those users with their permissions.
func TestKeysBindNames(t *testing.T) {
	bin := hermesBinary(t)
	dir := t.TempDir()
	var users bytes.Buffer
	for _, name := range []string{"ps", "w1", "w2"} {
		seed := filepath.Join(dir, name+".nk")
		out, err := exec.Command(bin, "keygen", "--name", name, "--seed-file", seed).Output()
		if err != nil {
			t.Fatalf("keygen: %v", err)
		}
		if !regexp.MustCompile(`^` + name + ` U[A-Z2-7]{55}\n$`).Match(out) {
			t.Fatalf("keygen printed %q, want one line NAME UPUBKEY", out)
		}
		if fi, err := os.Stat(seed); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("seed file %v, %v: want mode 0600", fi.Mode(), err)
		}
		users.Write(out)
	}
	usersFile := filepath.Join(dir, "users")
	os.WriteFile(usersFile, users.Bytes(), 0o600)

	conf, err := exec.Command(bin, "ps", "--print-nats-config", "--nkey-file", usersFile).Output()
	if err != nil {
		t.Fatalf("--print-nats-config: %v", err)
	}
	for _, want := range []string{`"hermes.up.w1"`, `"hermes.w.w2.*"`, `"hermes.inbox.w2.>"`, "# ps: the parameter server", "jetstream"} {
		if !bytes.Contains(conf, []byte(want)) {
			t.Errorf("config lacks %s:\n%s", want, conf)
		}
	}

	addr := freeLoopback(t)
	ps := exec.Command(bin, "ps", "--train", fixImages, "--test", fixImages, "--model", "logreg", "--val", "200",
		"--chunk", "100", "--min-chunk", "50", "--local-epochs", "2", "--target", "0.75", "--listen", addr,
		"--nkey-file", usersFile, "--run-dir", filepath.Join(dir, "run"), "--json")
	var psOut, psErr bytes.Buffer
	ps.Stdout, ps.Stderr = &psOut, &psErr
	if err := ps.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ps.Process.Kill() })

	impostor := exec.Command(bin, "worker", "--ps", "nats://"+addr, "--name", "w2", "--nkey-seed", filepath.Join(dir, "w1.nk"), "--give-up", "20s")
	var stderr bytes.Buffer
	impostor.Stderr = &stderr
	if err := impostor.Run(); err == nil {
		t.Fatal("a worker joined under another name than its key's")
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "hermes: worker w2: join: refused by NATS") || !strings.Contains(last, "bound to another worker name") {
		t.Fatalf("impostor's error: %q", stderr.String())
	}

	w1 := exec.Command(bin, "worker", "--ps", "nats://"+addr, "--name", "w1", "--nkey-seed", filepath.Join(dir, "w1.nk"), "--give-up", "20s")
	if out, err := w1.CombinedOutput(); err != nil {
		t.Fatalf("w1: %v\n%s", err, out)
	}
	if err := ps.Wait(); err != nil {
		t.Fatalf("ps: %v\n%s", err, psErr.String())
	}
	if !strings.Contains(psOut.String(), `"reached_target":true`) || !strings.Contains(psOut.String(), `"w1":{`) || strings.Contains(psOut.String(), `"w2":{`) {
		t.Fatalf("ps: %s", psOut.String())
	}
}
