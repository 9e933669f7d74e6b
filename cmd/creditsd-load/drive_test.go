package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// An open loop sends on its schedule, not when answers come back.
func TestOpenLoopKeepsItsSchedule(t *testing.T) {
	l := load{name: "t", concurrency: 4, count: 100, rate: 1000}
	samples, elapsed := l.run(context.Background(), func(context.Context, int) (int, error) { return 200, nil })
	require.Len(t, samples, 100)
	require.GreaterOrEqual(t, elapsed, 99*time.Millisecond, "100 requests at 1,000/s take 0.1 s")
	require.Less(t, elapsed, time.Second)
}

// When the server is slower than the offered rate, the wait shows as
// latency counted from each request's due time: the closed loop would
// report 20 ms for every one of these.
func TestOpenLoopCountsLatencyFromTheDueTime(t *testing.T) {
	l := load{name: "t", concurrency: 1, count: 10, rate: 1000}
	slow := func(context.Context, int) (int, error) { time.Sleep(20 * time.Millisecond); return 200, nil }
	samples, _ := l.run(context.Background(), slow)
	require.Len(t, samples, 10)
	last := samples[9]
	require.GreaterOrEqual(t, last.latency, 10*20*time.Millisecond-9*time.Millisecond,
		"the 10th request was due at 9 ms and answered after 10 × 20 ms")

	closed := load{name: "t", concurrency: 1, count: 10}
	samples, _ = closed.run(context.Background(), slow)
	require.Less(t, samples[9].latency, 100*time.Millisecond, "a closed loop times only the request itself")
}

// A failure inside the run is a sample, even one that wraps
// context.DeadlineExceeded as a dial timeout does; only a request the
// run's end cut short is left out, and its worker stops.
func TestWorkersCountFailuresNotTheRunsEnd(t *testing.T) {
	l := load{name: "t", concurrency: 2, count: 10}
	dialTimeout := func(context.Context, int) (int, error) {
		return 0, fmt.Errorf("dial tcp: i/o timeout: %w", context.DeadlineExceeded)
	}
	samples, _ := l.run(context.Background(), dialTimeout)
	require.Len(t, samples, 10, "every failed request is counted, none stops a worker")

	cut := func(context.Context, int) (int, error) { return 0, fmt.Errorf("%w: EOF", errCutShort) }
	samples, _ = l.run(context.Background(), cut)
	require.Empty(t, samples, "requests the run's end cut short are not samples")
}
