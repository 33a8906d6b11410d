package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium is Debian's headless browser, which `make test` installs.
const chromium = "/usr/bin/chromium"

// A real small run with its dashboard, in headless Chromium: the page
// shows the test accuracy and every worker's row, live, and is saved as a
// screenshot (to $HERMES_SCREENSHOT too, when set: the README's).
func TestDashboardInBrowser(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s: %v (make test installs Debian's chromium)", chromium, err)
	}
	bin := hermesBinary(t)
	addr := freeLoopback(t)
	// No target: the run goes on until the test has looked.
	demo := exec.Command(bin, "demo", "--train", fixImages, "--test", fixImages, "--model", "logreg", "--val", "200",
		"--chunk", "100", "--min-chunk", "50", "--local-epochs", "2", "--target", "0", "--patience", "1000000", "--max-time", "2m",
		"--slowdowns", "1,3,6", "--http", addr, "--run-dir", filepath.Join(t.TempDir(), "run"))
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { demo.Process.Kill(); demo.Wait() })
	url := "http://" + addr + "/"
	for i := 0; ; i++ {
		if res, err := http.Get(url + "healthz"); err == nil {
			res.Body.Close()
			break
		}
		if i == 200 {
			t.Fatal("the dashboard did not come up")
		}
		time.Sleep(50 * time.Millisecond)
	}

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1400, 1000), chromedp.UserDataDir(t.TempDir()))...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	wait, cancelWait := context.WithTimeout(ctx, time.Minute)
	defer cancelWait()
	if _, err := chromedp.Run(wait, chromedp.Poll[bool](`document.querySelectorAll("#workertable tbody tr").length === 3 &&
		document.getElementById("accuracy").textContent !== "–" && document.querySelectorAll("#acc polyline").length > 0`,
		chromedp.WithPollingTimeout(time.Minute))); err != nil {
		t.Fatalf("the page never showed the accuracy and three workers: %v", err)
	}
	time.Sleep(2 * time.Second) // a few more measurements on the plots
	acc, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("accuracy")))
	if err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(t.TempDir(), "dashboard.png"), os.Getenv("HERMES_SCREENSHOT")} {
		if path != "" {
			if err := os.WriteFile(path, png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	heap, _ := chromedp.Run(ctx, chromedp.Evaluate[float64](`performance.memory.usedJSHeapSize`))
	t.Logf("accuracy %s on the page; screenshot %d bytes; page heap %.1f MB", acc, len(png), heap/1e6)
}
