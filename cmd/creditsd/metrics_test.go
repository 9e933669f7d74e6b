package main

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// slowGatherer counts its gatherings; each waits for release.
type slowGatherer struct {
	calls   atomic.Int64
	started chan struct{}
	release chan struct{}
}

func (g *slowGatherer) Gather() ([]*dto.MetricFamily, error) {
	n := g.calls.Add(1)
	g.started <- struct{}{}
	<-g.release
	return []*dto.MetricFamily{{Name: new("t_gathering"), Help: new(string),
		Metric: []*dto.Metric{{Counter: &dto.Counter{Value: new(float64(n))}}}}}, nil
}

// TestSharedGathererSharesTheNextGathering: scrapes that arrive while a
// gathering runs share the next one; none is answered from a gathering
// that began before it arrived.
func TestSharedGathererSharesTheNextGathering(t *testing.T) {
	g := &slowGatherer{started: make(chan struct{}, 16), release: make(chan struct{})}
	s := &sharedGatherer{g: g, now: time.Now}
	value := func(mfs []*dto.MetricFamily) float64 { return mfs[0].Metric[0].Counter.GetValue() }
	// step lets the next gathering finish, failing (not hanging) if none
	// starts.
	step := func(why string) {
		t.Helper()
		select {
		case <-g.started:
			g.release <- struct{}{}
		case <-time.After(5 * time.Second):
			t.Fatal("no gathering started: " + why)
		}
	}

	first := make(chan float64)
	go func() {
		mfs, _ := s.Gather() // the fake never fails
		first <- value(mfs)
	}()
	for g.calls.Load() == 0 { // the first gathering runs; ten scrapes arrive meanwhile
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	got := make(chan float64, 10)
	for range 10 {
		wg.Go(func() {
			mfs, _ := s.Gather()
			got <- value(mfs)
		})
	}
	time.Sleep(50 * time.Millisecond) // let them queue
	step("the first")
	require.Equal(t, 1.0, <-first)
	step("none for the scrapes that waited")
	for range 10 {
		select {
		case v := <-got:
			require.Equal(t, 2.0, v, "each waiting scrape shares the second gathering, not the first")
		case <-time.After(5 * time.Second):
			t.Fatalf("the waiting scrapes were not all answered: %d gatherings", g.calls.Load())
		}
	}
	wg.Wait()
	require.Equal(t, int64(2), g.calls.Load())

	third := make(chan []*dto.MetricFamily)
	go func() {
		mfs, _ := s.Gather()
		third <- mfs
	}()
	step("none for a scrape after them all")
	mfs := <-third
	require.Equal(t, 3.0, value(mfs), "a scrape after them all gets a gathering of its own")
}
