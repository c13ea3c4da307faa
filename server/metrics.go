package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gptoss/gptoss/engine"
)

// metrics are the server's Prometheus series, registered on the server's
// own registry (no global state).
type metrics struct {
	requests       *prometheus.CounterVec
	promptTokens   prometheus.Counter
	generated      prometheus.Counter
	ttft           prometheus.Histogram
	interToken     prometheus.Histogram
	requestLatency prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, stats func() engine.Stats) *metrics {
	latency := []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10, 20, 40, 80}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gptoss_requests_total", Help: "HTTP requests by endpoint and status code.",
		}, []string{"endpoint", "status"}),
		promptTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gptoss_prompt_tokens_total", Help: "Prompt tokens processed.",
		}),
		generated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gptoss_generation_tokens_total", Help: "Tokens generated.",
		}),
		ttft: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gptoss_time_to_first_token_seconds", Help: "Time from request arrival to the first generated token.", Buckets: latency,
		}),
		interToken: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gptoss_inter_token_latency_seconds", Help: "Time between consecutive generated tokens of a request.", Buckets: latency,
		}),
		requestLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gptoss_e2e_request_latency_seconds", Help: "Time from request arrival to its last token.", Buckets: latency,
		}),
	}
	gauge := func(name, help string, f func(engine.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(stats()) })
	}
	reg.MustRegister(m.requests, m.promptTokens, m.generated, m.ttft, m.interToken, m.requestLatency,
		gauge("gptoss_num_requests_running", "Sequences in the running batch.", func(s engine.Stats) float64 { return float64(s.Running) }),
		gauge("gptoss_num_requests_waiting", "Requests waiting for a slot or KV memory.", func(s engine.Stats) float64 { return float64(s.Waiting) }),
		gauge("gptoss_kv_cache_usage_ratio", "KV-cache memory reserved by running sequences, as a fraction of the budget.", func(s engine.Stats) float64 {
			if s.KVCapacity == 0 {
				return 0
			}
			return float64(s.KVReserved) / float64(s.KVCapacity)
		}),
		gauge("gptoss_kv_cache_used_bytes", "KV-cache memory held by running sequences now.", func(s engine.Stats) float64 { return float64(s.KVUsed) }),
	)
	return m
}
