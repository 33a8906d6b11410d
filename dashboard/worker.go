package dashboard

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// WorkerMetrics are a worker's own Prometheus metrics: what it trains, how
// fast, and the memory it has left.
type WorkerMetrics struct {
	reg     *prometheus.Registry
	samples prometheus.Counter
	chunks  prometheus.Histogram
	rate    prometheus.Gauge
}

// NewWorkerMetrics returns a worker's metrics; freeMemory reports the
// memory the system can give (read at each scrape).
func NewWorkerMetrics(freeMemory func() int64) *WorkerMetrics {
	m := &WorkerMetrics{reg: prometheus.NewRegistry(),
		samples: prometheus.NewCounter(prometheus.CounterOpts{Name: "hermes_worker_samples_total", Help: "Samples trained, over all local epochs."}),
		chunks: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hermes_worker_chunk_seconds", Help: "Time to train a chunk.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
		rate: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hermes_worker_samples_per_second", Help: "Training speed on the last chunk."}),
	}
	free := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hermes_worker_free_memory_bytes", Help: "Memory the system can give (MemAvailable)."},
		func() float64 { return float64(freeMemory()) })
	m.reg.MustRegister(m.samples, m.chunks, m.rate, free, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Trained records a chunk: its rows, the samples trained and the time.
func (m *WorkerMetrics) Trained(rows, samples int, took time.Duration) {
	m.samples.Add(float64(samples))
	m.chunks.Observe(took.Seconds())
	if took > 0 {
		m.rate.Set(float64(samples) / took.Seconds())
	}
}

// Serve serves /metrics and /healthz on l, read-only and behind o's token,
// until ctx ends; it returns the metrics' URL.
func (m *WorkerMetrics) Serve(ctx context.Context, l net.Listener, o Options) string {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	s := &Server{o: o}
	s.http = &http.Server{Handler: s.guard(mux), ReadHeaderTimeout: 10 * time.Second}
	return s.Serve(ctx, l) + "metrics"
}
