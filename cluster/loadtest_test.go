package cluster

import (
	"context"
	"testing"
	"time"
)

// The load test against a real server: every update it sends is merged
// and answered, none dropped, and the latencies are measured.
func TestLoadTest(t *testing.T) {
	ps := startFixturePS(t, func(c *PSConfig) {
		c.Settings.Policy, c.Settings.Patience, c.Target = "asp", 1<<20, 0
	})
	ctx, cancel := context.WithCancel(context.Background())
	ran := runInBackground(ctx, ps)
	defer func() { cancel(); <-ran }()
	res, err := LoadTest(ctx, LoadConfig{URL: ps.URL(), Workers: 5, Rate: 20, Duration: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Sent < 50 || res.Dropped != 0 || res.Answered != res.Sent || !(res.P50Ms > 0 && res.P99Ms >= res.P50Ms) {
		t.Fatalf("load test %+v: want at least 50 updates, all answered, latencies measured", res)
	}
	if got := ps.Rejected(); len(got) != 0 {
		t.Fatalf("the server rejected %v of the load test's valid updates", got)
	}
}
