package main

import (
	"math"
	"slices"
	"strconv"
	"time"
)

// sample is one finished request: when it started (since the run began),
// how long it took and the HTTP status (0: no answer at all).
type sample struct {
	at      time.Duration
	latency time.Duration
	status  int
}

// Summary is what a set of samples says, in the units the report prints.
type Summary struct {
	Requests  int            `json:"requests"`
	OK        int            `json:"ok"`
	Errors    map[string]int `json:"errors"` // by status, "transport" for no answer
	Seconds   float64        `json:"seconds"`
	PerSecond float64        `json:"per_second"` // 2xx answers per second
	P50ms     float64        `json:"p50_ms"`
	P95ms     float64        `json:"p95_ms"`
	P99ms     float64        `json:"p99_ms"`
	Maxms     float64        `json:"max_ms"`

	ServerCores float64 `json:"server_cores,omitempty"` // the server's CPU time ÷ wall time
	LoadCores   float64 `json:"load_cores,omitempty"`   // this tool's, likewise: it shares the machine
	OtherCores  float64 `json:"other_cores,omitempty"`  // everything else on the machine, kernel included

	// The server's and this tool's CPU time per 2xx answer, in µs: what a
	// request cost each, however the rate moved (chargeAnswers).
	ServerCPUMicros float64 `json:"server_cpu_us_per_ok,omitempty"`
	LoadCPUMicros   float64 `json:"load_cpu_us_per_ok,omitempty"`

	Cost    *Cost  `json:"server_cost,omitempty"` // what the run cost the server (cost.go); nil when out of reach
	Profile string `json:"profile,omitempty"`     // the server's CPU profile over the run, with --profile
}

// setCores records the cores (from cpuUse.cores) that the server, this
// tool and the rest of the machine used over the run.
func (s *Summary) setCores(server, load, other float64) {
	s.ServerCores, s.LoadCores, s.OtherCores = round2(server), round2(load), round2(other)
}

// chargeAnswers records what each 2xx answer cost the server and this tool
// in CPU, from the cores they used over the run, unrounded: a tool at 0.11
// cores is ±5 % of itself at two decimals. Only a run whose answers are all
// that the server did is charged: beside the sweep, the server's CPU is the
// sweep's too.
func (s *Summary) chargeAnswers(server, load float64) {
	if s.OK == 0 {
		return
	}
	perOK := s.Seconds / float64(s.OK) * 1e6
	s.ServerCPUMicros, s.LoadCPUMicros = round2(server*perOK), round2(load*perOK)
}

// summarize computes throughput and latency percentiles over samples that
// took elapsed in all. Latencies of failed requests count too: a fast 500
// must not hide behind the successes, nor a slow one improve the figures.
func summarize(samples []sample, elapsed time.Duration) Summary {
	s := Summary{Requests: len(samples), Errors: map[string]int{}, Seconds: elapsed.Seconds()}
	lat := make([]time.Duration, len(samples))
	for i, x := range samples {
		lat[i] = x.latency
		switch {
		case x.status >= 200 && x.status < 300:
			s.OK++
		case x.status == 0:
			s.Errors["transport"]++
		default:
			s.Errors[strconv.Itoa(x.status)]++
		}
	}
	if elapsed > 0 {
		s.PerSecond = float64(s.OK) / elapsed.Seconds()
	}
	slices.Sort(lat)
	s.P50ms, s.P95ms, s.P99ms = ms(percentile(lat, 50)), ms(percentile(lat, 95)), ms(percentile(lat, 99))
	if len(lat) > 0 {
		s.Maxms = ms(lat[len(lat)-1])
	}
	return s
}

// percentile is the nearest-rank percentile of sorted: the smallest value
// that at least p% of the samples do not exceed. No interpolation, so the
// figure is always a latency some request really had.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// window keeps the samples that started in [from, to).
func window(samples []sample, from, to time.Duration) []sample {
	var out []sample
	for _, s := range samples {
		if s.at >= from && s.at < to {
			out = append(out, s)
		}
	}
	return out
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
