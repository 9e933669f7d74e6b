package main

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPercentileNearestRank(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		out := make([]time.Duration, len(xs))
		for i, x := range xs {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, c := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 99, 0},
		{"one", ms(7), 50, 7 * time.Millisecond},
		{"one at p0 is still the sample", ms(7), 0, 7 * time.Millisecond},
		{"median of 4 is the 2nd", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 1..100 is 99", hundred, 99, 99 * time.Millisecond},
		{"p95 of 1..100 is 95", hundred, 95, 95 * time.Millisecond},
		{"p100 is the max", hundred, 100, 100 * time.Millisecond},
		{"p99 of 10 is the max", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, percentile(c.sorted, c.p))
		})
	}
}

func TestSummarize(t *testing.T) {
	var samples []sample
	for i := range 100 {
		samples = append(samples, sample{at: time.Duration(i) * time.Millisecond, latency: time.Duration(100-i) * time.Millisecond, status: 201})
	}
	samples[0].status = 500 // the slowest one failed: it still counts in the latencies
	samples[1].status = 0
	s := summarize(samples, 2*time.Second)
	require.Equal(t, 100, s.Requests)
	require.Equal(t, 98, s.OK)
	require.Equal(t, map[string]int{"500": 1, "transport": 1}, s.Errors)
	require.InDelta(t, 49.0, s.PerSecond, 1e-9, "2xx per second")
	require.Equal(t, 50.0, s.P50ms)
	require.Equal(t, 99.0, s.P99ms)
	require.Equal(t, 100.0, s.Maxms)

	w := window(samples, 10*time.Millisecond, 20*time.Millisecond)
	require.Len(t, w, 10)
	require.Equal(t, 10*time.Millisecond, w[0].at)
	require.Equal(t, Summary{Errors: map[string]int{}}, summarize(nil, 0))
}

func TestMedian(t *testing.T) {
	require.Equal(t, 0.0, median(nil))
	require.Equal(t, 2.0, median([]float64{3, 1, 2}))
	require.Equal(t, 2.5, median([]float64{4, 1, 3, 2}))
}

func TestParseProcStatus(t *testing.T) {
	st, err := parseProcStatus(bufio.NewScanner(strings.NewReader("Name:\tcreditsd\nVmHWM:\t  81920 kB\nVmRSS:\t   40960 kB\nThreads:\t9\n")))
	require.NoError(t, err)
	require.Equal(t, procStatus{rss: 40 << 20, hwm: 80 << 20}, st)
	_, err = parseProcStatus(bufio.NewScanner(strings.NewReader("VmRSS:\tlots kB\n")))
	require.Error(t, err)
}

func TestListeningAddr(t *testing.T) {
	a, ok := listeningAddr(`{"time":"…","level":"INFO","msg":"listening","addr":"127.0.0.1:41234"}`)
	require.True(t, ok)
	require.Equal(t, "127.0.0.1:41234", a)
	_, ok = listeningAddr(`{"msg":"notification","addr":"x"}`)
	require.False(t, ok)
	_, ok = listeningAddr(`time=… msg=listening addr=127.0.0.1:1`)
	require.False(t, ok, "the load tool's config asks for JSON logs")
}

func TestSpreadStaysInRange(t *testing.T) {
	seen := map[int]bool{}
	for i := range 10_000 {
		u := spread(i, 1000)
		require.True(t, u >= 0 && u < 1000)
		seen[u] = true
	}
	require.Greater(t, len(seen), 900, "requests reach most users")
}

func TestParseProcStat(t *testing.T) {
	// The command name may hold spaces and parentheses; utime 250 and
	// stime 50 ticks are 3 s.
	d, err := parseProcStat("4242 (cred (it) sd) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0\n")
	require.NoError(t, err)
	require.Equal(t, 3*time.Second, d)
	_, err = parseProcStat("4242 creditsd S 1")
	require.Error(t, err)
	server, self, other := cpuUse{}.cores(cpuUse{server: 3 * time.Second, self: time.Second, machine: 5 * time.Second}, 2*time.Second)
	require.Equal(t, 1.5, server)
	require.Equal(t, 0.5, self)
	require.Equal(t, 0.5, other, "the machine's busy time less the two")

	busy, err := parseMachineStat("cpu  100 5 50 1000 30 2 3 0 0 0\ncpu0 1 2 3\n")
	require.NoError(t, err)
	require.Equal(t, 1600*time.Millisecond, busy, "user+nice+system+irq+softirq+steal, not idle or iowait")
	_, err = parseMachineStat("intr 1 2 3\n")
	require.Error(t, err)
}

func TestCoresAndCPUPerAnswer(t *testing.T) {
	s := Summary{OK: 8000, Seconds: 2}
	s.setCores(1.5, 0.114, 0.1)
	require.Equal(t, []float64{1.5, 0.11, 0.1}, []float64{s.ServerCores, s.LoadCores, s.OtherCores}, "cores shown to two decimals")
	require.Zero(t, s.ServerCPUMicros, "setCores charges nothing: the sweep's runs are not charged")

	s.chargeAnswers(1.5, 0.114)
	require.Equal(t, 375.0, s.ServerCPUMicros, "1.5 cores for 2 s is 3 s of CPU over 8,000 answers")
	require.Equal(t, 28.5, s.LoadCPUMicros, "from 0.114 cores, not the 0.11 shown (27.5)")

	none := Summary{Seconds: 2}
	none.chargeAnswers(1.5, 0.4)
	require.Zero(t, none.ServerCPUMicros, "no answer: no cost per answer")
	require.Zero(t, none.LoadCPUMicros)
}

// The life's peak is the higher of VmHWM and the samples: the two are a
// little off each other, and the report's peak was below a sampled one.
// Once the process is gone, the samples are what is left.
func TestHWMIsTheHigherPeak(t *testing.T) {
	s := &rssSampler{pid: os.Getpid()}
	st, err := readProcStatus(os.Getpid())
	require.NoError(t, err)
	s.life.Store(st.hwm + 1<<20)
	require.Equal(t, mb(st.hwm+1<<20), s.hwmMB(), "a sample above VmHWM")
	s.life.Store(0)
	require.GreaterOrEqual(t, s.hwmMB(), mb(st.hwm), "VmHWM above the samples")

	gone := &rssSampler{pid: 1 << 30}
	gone.life.Store(64 << 20)
	require.Equal(t, 64.0, gone.hwmMB())
}
