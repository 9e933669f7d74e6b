package entitlements

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A key spends its burst at once, then one more each Every; what it cannot
// afford is refused with the wait until it can, and refused takes spend
// nothing. Keys do not share a bucket.
func TestBudgetTake(t *testing.T) {
	b := &Budget{Burst: 3, Every: time.Minute}
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	require.Zero(t, b.Take("alice", 2, t0))
	require.Zero(t, b.Take("alice", 1, t0))
	require.Equal(t, time.Minute, b.Take("alice", 1, t0), "the burst is spent")
	require.Equal(t, 2*time.Minute, b.Take("alice", 2, t0))
	require.Equal(t, 30*time.Second, b.Take("alice", 1, t0.Add(30*time.Second)), "refusals spent nothing")
	require.Zero(t, b.Take("alice", 1, t0.Add(time.Minute)))
	require.Zero(t, b.Take("bob", 3, t0), "another key's bucket is full")

	require.Zero(t, b.Take("carol", 3, t0))
	require.Zero(t, b.Take("carol", 3, t0.Add(time.Hour)), "a bucket fills up again, to Burst and no more")
	require.Equal(t, time.Minute, b.Take("carol", 1, t0.Add(time.Hour)))

	require.Zero(t, b.Take("dave", 10, t0), "more than Burst is taken as Burst")
	require.Equal(t, 3*time.Minute, b.Take("dave", 10, t0))
}

func TestBudgetZeroAllowsAll(t *testing.T) {
	var nilBudget *Budget
	require.Zero(t, nilBudget.Take("alice", 100, time.Now()))
	require.Zero(t, (&Budget{}).Take("alice", 100, time.Now()))
}

// Keys whose buckets are full again are forgotten once the map has
// doubled, so a stream of users costs memory for the recent ones only;
// a key still spending is kept.
func TestBudgetForgetsFullBuckets(t *testing.T) {
	b := &Budget{Burst: 2, Every: time.Second}
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	require.Zero(t, b.Take("busy", 2, t0))
	for i := range 5000 {
		require.Zero(t, b.Take(fmt.Sprint("user", i), 1, t0.Add(time.Duration(i)*time.Millisecond)))
	}
	b.mu.Lock()
	kept := len(b.full)
	_, busy := b.full["busy"]
	b.mu.Unlock()
	require.Less(t, kept, 2*1024+1000, "the full buckets were forgotten")
	require.False(t, busy, "busy's bucket was full again by then")

	require.Zero(t, b.Take("busy", 2, t0.Add(10*time.Second)))
	require.Equal(t, time.Second, b.Take("busy", 1, t0.Add(10*time.Second)))
}

// Concurrent takes of one key never spend more than it has.
func TestBudgetConcurrent(t *testing.T) {
	b := &Budget{Burst: 50, Every: time.Hour}
	now := time.Now()
	var mu sync.Mutex
	granted := 0
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			if b.Take("alice", 1, now) == 0 {
				mu.Lock()
				granted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Equal(t, 50, granted)
}
