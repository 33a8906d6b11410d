package dashboard

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

//go:embed assets
var assets embed.FS

// Options secure a dashboard. On a loopback address none is needed; on any
// other, a Token or TLS is required.
type Options struct {
	// Token, when set, must come as "Authorization: Bearer TOKEN" or, for
	// the page and its event stream (a browser's EventSource sends no
	// headers), as ?token=TOKEN.
	Token string
	// TLSCert and TLSKey serve HTTPS.
	TLSCert, TLSKey string
	// Every is how often the event stream may send a new snapshot: changes
	// in between are coalesced into one. 0 means 500 ms.
	Every time.Duration
}

// Server serves a State: the page (/), its event stream (/events), the
// JSON snapshot (/api/state), Prometheus metrics (/metrics) and /healthz.
// It is read-only: every method but GET and HEAD is refused.
type Server struct {
	st   *State
	o    Options
	reg  *prometheus.Registry
	sent atomic.Int64 // snapshots sent on event streams
	http *http.Server
}

// NewServer returns a server of st.
func NewServer(st *State, o Options) *Server {
	if o.Every == 0 {
		o.Every = 500 * time.Millisecond
	}
	s := &Server{st: st, o: o, reg: prometheus.NewRegistry()}
	validation := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hermes_validation_seconds",
		Help:    "Time of the validation passes of each global-model change.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)})
	st.mu.Lock()
	for _, v := range st.pending { // a replayed run's
		validation.Observe(v)
	}
	st.pending, st.onValidation = nil, validation.Observe
	st.mu.Unlock()
	s.reg.MustRegister(validation, collector{s}, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	page, _ := fs.Sub(assets, "assets")
	mux.Handle("GET /", http.FileServerFS(page))
	mux.HandleFunc("GET /events", s.events)
	mux.HandleFunc("GET /api/state", func(w http.ResponseWriter, r *http.Request) {
		snap, _ := s.st.Snapshot()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(snap)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	s.http = &http.Server{Handler: s.guard(mux), ReadHeaderTimeout: 10 * time.Second}
	return s
}

// guard refuses what is not a read, and what lacks the token.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "read-only", http.StatusMethodNotAllowed)
			return
		}
		if s.o.Token != "" && r.URL.Path != "/healthz" {
			got := r.URL.Query().Get("token")
			if h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
				got = h
			}
			if subtle.ConstantTimeCompare([]byte(got), []byte(s.o.Token)) != 1 {
				w.Header().Set("WWW-Authenticate", "Bearer")
				http.Error(w, "token required", http.StatusUnauthorized)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// events streams snapshots as Server-Sent Events: one at once, then at most
// one each Options.Every, and only when the state changed.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	tick := time.NewTicker(s.o.Every)
	defer tick.Stop()
	last := ^uint64(0)
	for {
		if snap, seq := s.st.Snapshot(); seq != last {
			// The page draws the chunk lines of the first workers only; a
			// fleet's histories would be most of every message.
			for _, w := range snap.Workers[min(len(snap.Workers), drawnChunks):] {
				w.Chunks = nil
			}
			b, _ := json.Marshal(snap)
			if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
				return
			}
			flusher.Flush()
			last = seq
			s.sent.Add(1)
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// drawnChunks is how many workers' chunk histories the page draws (app.js).
const drawnChunks = 8

// Listen checks that addr may serve with these options and listens on it:
// a non-loopback address needs a token or TLS.
func Listen(addr string, o Options) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--http %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	loopback := host == "localhost" || (ip != nil && ip.IsLoopback())
	if !loopback && o.Token == "" && o.TLSCert == "" {
		return nil, fmt.Errorf("--http %s is not a loopback address: give --http-token or TLS (--tls-cert, --tls-key), or serve on 127.0.0.1", addr)
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--http: %w", err)
	}
	return l, nil
}

// Serve serves on l until ctx ends; it returns the URL of the page (with
// a token, the page wants ?token=, which is not in the URL: URLs get
// logged).
func (s *Server) Serve(ctx context.Context, l net.Listener) string {
	scheme := "http"
	if s.o.TLSCert != "" {
		scheme = "https"
	}
	go func() {
		if s.o.TLSCert != "" {
			s.http.ServeTLS(l, s.o.TLSCert, s.o.TLSKey)
		} else {
			s.http.Serve(l)
		}
	}()
	go func() {
		<-ctx.Done()
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s.http.Shutdown(c)
		s.http.Close()
	}()
	return scheme + "://" + l.Addr().String() + "/"
}

// Sent returns how many snapshots event streams have sent.
func (s *Server) Sent() int64 { return s.sent.Load() }

// collector turns the state into Prometheus metrics at each scrape.
type collector struct{ s *Server }

var (
	descAccuracy = prometheus.NewDesc("hermes_test_accuracy", "Test accuracy of the global model, last measured.", nil, nil)
	descVersion  = prometheus.NewDesc("hermes_model_version", "Global-model changes so far.", nil, nil)
	descWorkers  = prometheus.NewDesc("hermes_workers", "Workers by state (up, lost).", []string{"state"}, nil)
	descUpdates  = prometheus.NewDesc("hermes_updates_total", "Chunks trained by each worker, by the gate's decision (major, minor).", []string{"worker", "kind"}, nil)
	descBytes    = prometheus.NewDesc("hermes_bytes_total", "Message payload bytes the server received (in) and sent (out).", []string{"direction"}, nil)
	descChunk    = prometheus.NewDesc("hermes_chunk_samples", "Each worker's chunk size in samples.", []string{"worker"}, nil)
	descRejected = prometheus.NewDesc("hermes_rejected_total", "Messages the server turned away, by reason.", []string{"reason"}, nil)
	descSSE      = prometheus.NewDesc("hermes_dashboard_snapshots_total", "Snapshots sent to dashboard pages.", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAccuracy, descVersion, descWorkers, descUpdates, descBytes, descChunk, descRejected, descSSE} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	snap, _ := c.s.st.Snapshot()
	ch <- prometheus.MustNewConstMetric(descAccuracy, prometheus.GaugeValue, snap.Accuracy)
	ch <- prometheus.MustNewConstMetric(descVersion, prometheus.GaugeValue, float64(snap.Version))
	up, lost := 0, 0
	for _, w := range snap.Workers {
		if w.Up {
			up++
		} else {
			lost++
		}
		ch <- prometheus.MustNewConstMetric(descUpdates, prometheus.CounterValue, float64(w.Major), w.Name, "major")
		ch <- prometheus.MustNewConstMetric(descUpdates, prometheus.CounterValue, float64(w.Minor), w.Name, "minor")
		ch <- prometheus.MustNewConstMetric(descChunk, prometheus.GaugeValue, float64(w.Chunk), w.Name)
	}
	ch <- prometheus.MustNewConstMetric(descWorkers, prometheus.GaugeValue, float64(up), "up")
	ch <- prometheus.MustNewConstMetric(descWorkers, prometheus.GaugeValue, float64(lost), "lost")
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(snap.BytesIn), "in")
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(snap.BytesOut), "out")
	for reason, n := range snap.Rejected {
		ch <- prometheus.MustNewConstMetric(descRejected, prometheus.CounterValue, float64(n), reason)
	}
	ch <- prometheus.MustNewConstMetric(descSSE, prometheus.CounterValue, float64(c.s.sent.Load()))
}
