package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The boards' build: the arm64 binary, run by qemu, trains the MLP on the
// fixture to the same accuracy and loss as this machine's build, with the
// NEON kernel and with the pure-Go (gonum) path. HERMES_QEMU=required
// (make test) fails rather than skips when qemu-aarch64-static is missing.
func TestArm64BinaryTrainsAsThisOne(t *testing.T) {
	qemu, err := exec.LookPath("qemu-aarch64-static")
	if err != nil {
		if os.Getenv("HERMES_QEMU") == "required" {
			t.Fatal("HERMES_QEMU=required but qemu-aarch64-static is not installed (scripts/deps.sh qemu)")
		}
		t.Skip("no qemu-aarch64-static")
	}
	if testing.Short() {
		t.Skip("builds and emulates arm64")
	}
	buildArm64 := func(tags string) string {
		bin := filepath.Join(t.TempDir(), "hermes-arm64")
		cmd := exec.Command("go", "build", "-tags="+tags, "-o", bin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOARCH=arm64")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build arm64 (tags %q): %v\n%s", tags, err, out)
		}
		return bin
	}
	train := func(argv ...string) map[string]any {
		argv = append(argv, "train", "--train", fixImages, "--test", fixImages, "--model", "mlp", "--epochs", "3", "--lr", "0.01", "--json")
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", argv, err, out)
		}
		return lastJSON(t, string(out))
	}
	here := train(hermesBinary(t))
	for _, tags := range []string{"", "purego"} { // the NEON kernel, then gonum's Go
		got := train(qemu, buildArm64(tags))
		t.Logf("arm64 (tags %q): accuracy %v, loss %v; this machine: %v, %v", tags, got["test_accuracy"], got["test_loss"], here["test_accuracy"], here["test_loss"])
		if got["test_accuracy"] != here["test_accuracy"] || got["test_loss"] != here["test_loss"] {
			t.Errorf("arm64 (tags %q): accuracy %v, loss %v; this machine %v, %v", tags, got["test_accuracy"], got["test_loss"], here["test_accuracy"], here["test_loss"])
		}
	}
}
