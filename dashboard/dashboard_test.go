package dashboard

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// A run's events, as events.jsonl holds them.
var runEvents = []string{
	`{"time":"2026-11-27T10:00:00Z","msg":"run started","node":"ps","policy":"hermes","chunk":2500,"mini_batch":16,"target":0.85}`,
	`{"time":"2026-11-27T10:00:01Z","msg":"worker joined","node":"ps","worker":"pi-1","id":0}`,
	`{"time":"2026-11-27T10:00:01Z","msg":"worker joined","node":"ps","worker":"pi-2","id":1}`,
	`{"time":"2026-11-27T10:00:03Z","msg":"chunk trained","node":"pi-1","worker":"pi-1","samples":10625,"loss":0.4,"major":true,"train_ms":500}`,
	`{"time":"2026-11-27T10:00:03Z","msg":"global model","node":"ps","version":1,"val_loss":0.52,"from":[0],"validation_ms":12.5}`,
	`{"time":"2026-11-27T10:00:03Z","msg":"test accuracy","node":"ps","version":1,"test_accuracy":0.81,"bytes_in":1000,"bytes_out":5000}`,
	`{"time":"2026-11-27T10:00:04Z","msg":"resized","node":"ps","worker":"pi-2","chunk":900,"mini_batch":8}`,
	`{"time":"2026-11-27T10:00:04Z","level":"WARN","msg":"rejected message","node":"ps","reason":"forged_identity","from":"pi-2"}`,
	`{"time":"2026-11-27T10:00:05Z","msg":"worker timed out","node":"ps","worker":"pi-2"}`,
	`not json at all`,
	`{"time":"2026-11-27T10:00:06Z","msg":"stop","node":"ps","reason":"target accuracy"}`,
}

func replayed(t *testing.T) *State {
	st := NewState()
	for _, l := range runEvents {
		st.Apply([]byte(l))
	}
	return st
}

// The events of a run make its snapshot: workers, their chunks and
// updates, the measurements, rejections and the end.
func TestStateFromEvents(t *testing.T) {
	snap, _ := replayed(t).Snapshot()
	if snap.Policy != "hermes" || snap.Version != 1 || snap.Accuracy != 0.81 || snap.ValLoss != 0.52 || snap.BytesOut != 5000 || snap.Stopped != "target accuracy" {
		t.Fatalf("snapshot %+v", snap)
	}
	if len(snap.Workers) != 2 {
		t.Fatalf("workers %+v", snap.Workers)
	}
	p1, p2 := snap.Workers[0], snap.Workers[1]
	if !p1.Up || p1.Major != 1 || p1.Chunk != 2500 || p1.SamplesPerSec != 21250 || p1.LastSeen != 3 {
		t.Errorf("pi-1 %+v", p1)
	}
	if p2.Up || p2.Chunk != 900 || p2.MiniBatch != 8 || len(p2.Chunks) != 2 {
		t.Errorf("pi-2 %+v", p2)
	}
	if snap.Rejected["forged_identity"] != 1 || len(snap.Points) != 1 || len(snap.Events) != 7 {
		t.Errorf("rejected %v, points %v, events %v", snap.Rejected, snap.Points, snap.Events)
	}
}

// /metrics is Prometheus exposition that expfmt parses, with every metric
// the README lists, the Go and process collectors' too.
func TestMetrics(t *testing.T) {
	srv := httptest.NewServer(NewServer(replayed(t), Options{}).http.Handler)
	defer srv.Close()
	families := scrape(t, srv.URL+"/metrics")
	for _, name := range []string{"hermes_test_accuracy", "hermes_model_version", "hermes_workers", "hermes_updates_total",
		"hermes_bytes_total", "hermes_chunk_samples", "hermes_validation_seconds", "hermes_rejected_total",
		"go_goroutines", "process_resident_memory_bytes"} {
		if families[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	if v := families["hermes_test_accuracy"].Metric[0].GetGauge().GetValue(); v != 0.81 {
		t.Errorf("hermes_test_accuracy %v", v)
	}
	if n := families["hermes_validation_seconds"].Metric[0].GetHistogram().GetSampleCount(); n != 1 {
		t.Errorf("validation histogram has %d samples, want 1", n)
	}
}

// Read-only, and with a token nothing but /healthz without it.
func TestGuard(t *testing.T) {
	srv := httptest.NewServer(NewServer(replayed(t), Options{Token: "s3cret"}).http.Handler)
	defer srv.Close()
	get := func(path, bearer string) int {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, c := range []struct {
		path, bearer string
		want         int
	}{
		{"/api/state", "", 401}, {"/api/state", "wrong", 401}, {"/api/state", "s3cret", 200},
		{"/metrics?token=s3cret", "", 200}, {"/", "", 401}, {"/?token=s3cret", "", 200}, {"/healthz", "", 200},
	} {
		if got := get(c.path, c.bearer); got != c.want {
			t.Errorf("GET %s (bearer %q): %d, want %d", c.path, c.bearer, got, c.want)
		}
	}
	res, err := http.Post(srv.URL+"/api/state?token=s3cret", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 405 {
		t.Errorf("POST: %d, want 405", res.StatusCode)
	}
	if _, err := Listen("0.0.0.0:0", Options{}); err == nil || !strings.Contains(err.Error(), "--http-token") {
		t.Errorf("a network address without a token: %v", err)
	}
	if l, err := Listen("0.0.0.0:0", Options{Token: "t"}); err != nil {
		t.Errorf("a network address with a token: %v", err)
	} else {
		l.Close()
	}
}

// The event stream coalesces: a thousand changes in a burst reach the page
// as a snapshot or two, not a thousand.
func TestEventsCoalesce(t *testing.T) {
	st := replayed(t)
	s := NewServer(st, Options{Every: 200 * time.Millisecond})
	srv := httptest.NewServer(s.http.Handler)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	go func() {
		for i := range 1000 {
			st.Apply([]byte(fmt.Sprintf(`{"time":"2026-11-27T10:01:00Z","msg":"chunk trained","node":"w%d","samples":1,"loss":1,"train_ms":1}`, i)))
		}
	}()
	messages := 0
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			messages++
		}
	}
	if messages < 2 || messages > 7 || s.Sent() != int64(messages) {
		t.Fatalf("%d snapshots in 1 s at most every 200 ms (server counted %d)", messages, s.Sent())
	}
}

// A worker's own metrics: samples, chunk times, speed and free memory.
func TestWorkerMetrics(t *testing.T) {
	m := NewWorkerMetrics(func() int64 { return 3 << 30 })
	m.Trained(2500, 10625, 500*time.Millisecond)
	l, err := Listen("127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	families := scrape(t, m.Serve(ctx, l, Options{}))
	want := map[string]float64{"hermes_worker_samples_total": 10625, "hermes_worker_samples_per_second": 21250, "hermes_worker_free_memory_bytes": 3 << 30}
	for name, v := range want {
		f := families[name]
		if f == nil {
			t.Errorf("no %s", name)
			continue
		}
		m := f.Metric[0]
		if got := m.GetCounter().GetValue() + m.GetGauge().GetValue(); got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	if h := families["hermes_worker_chunk_seconds"]; h == nil || h.Metric[0].GetHistogram().GetSampleCount() != 1 {
		t.Errorf("chunk histogram %v", h)
	}
}

// scrape gets url's exposition and parses it as Prometheus does.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return families
}
