package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// request sends request number i and returns the HTTP status (0 with an
// error when no answer came).
type request func(ctx context.Context, i int) (int, error)

// load is one timed phase: concurrency workers send requests until count
// requests were sent or duration passed, whichever comes first. At least
// one of the two bounds is always set, so every run ends by itself.
type load struct {
	name        string
	concurrency int
	count       int           // 0: no bound on the count
	duration    time.Duration // 0: no bound on the time
	progress    io.Writer     // a line every second; nil for none
	rss         *rssSampler   // shown in the progress line; may be nil
	// rate, when set, makes the phase an open loop: request i is due at
	// start + i/rate, whatever the answers to earlier ones, and its
	// latency counts from when it was due. A closed loop (rate 0) sends
	// as fast as answers come back, so at saturation its percentiles
	// measure the queue its own clients build; this measures the latency
	// a steady offered load sees. Too few workers to keep the rate shows
	// up as latency, not as a quietly lower rate.
	rate float64
}

// counters are what the progress line reads while workers run.
type counters struct {
	done, failed atomic.Int64
}

// run drives the phase and returns every sample and the wall time taken.
func (l load) run(ctx context.Context, do request) ([]sample, time.Duration) {
	if l.count <= 0 && l.duration <= 0 {
		panic("load: neither count nor duration bounds the phase")
	}
	if l.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.duration)
		defer cancel()
	}
	var next atomic.Int64
	var c counters
	start := time.Now()
	stop := l.report(start, &c)
	perWorker := make([][]sample, l.concurrency)
	var wg sync.WaitGroup
	for w := range l.concurrency {
		wg.Go(func() { perWorker[w] = l.worker(ctx, start, &next, &c, do) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	stop()
	var all []sample
	for _, s := range perWorker {
		all = append(all, s...)
	}
	return all, elapsed
}

// worker takes request numbers until the count or the time runs out. A
// request cut short by the deadline is not counted: it measures the
// deadline, not the server.
func (l load) worker(ctx context.Context, start time.Time, next *atomic.Int64, c *counters, do request) []sample {
	var out []sample
	for ctx.Err() == nil {
		i := int(next.Add(1) - 1)
		if l.count > 0 && i >= l.count {
			break
		}
		t0 := time.Now()
		if l.rate > 0 {
			t0 = start.Add(time.Duration(float64(i) / l.rate * float64(time.Second)))
			if d := time.Until(t0); d > 0 && sleep(ctx, d) != nil {
				break
			}
		}
		status, err := do(ctx, i)
		lat := time.Since(t0)
		if err != nil && (ctx.Err() != nil || errors.Is(err, errCutShort)) {
			break // cut short by the deadline: it measures the deadline, not the server
		}
		out = append(out, sample{at: t0.Sub(start), latency: lat, status: status})
		c.done.Add(1)
		if status < 200 || status > 299 {
			c.failed.Add(1)
		}
	}
	return out
}

// report prints a progress line every second until the returned func is
// called.
func (l load) report(start time.Time, c *counters) func() {
	if l.progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last := int64(0)
		for {
			select {
			case <-done:
				return
			case <-t.C:
				n := c.done.Load()
				fmt.Fprintf(l.progress, "[%s] %4.0fs sent=%d failed=%d rate=%d/s%s\n", l.name,
					time.Since(start).Seconds(), n, c.failed.Load(), n-last, l.rss.progress())
				last = n
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
