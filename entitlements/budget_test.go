package entitlements

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// take is Budget.Take's two answers as one string, for short tests.
func take(b *Budget, key string, n int, now time.Time) string {
	took, wait := b.Take(key, n, now)
	return fmt.Sprintf("took %d, wait %s", took, wait)
}

// A key spends its burst at once, then one more each Every; a take gets
// what the key has, up to what it asks, and one that gets less is told how
// long until the key has all it asked for (at most Burst). Keys do not share a bucket.
func TestBudgetTake(t *testing.T) {
	b := &Budget{Burst: 3, Every: time.Minute}
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	require.Equal(t, "took 2, wait 0s", take(b, "alice", 2, t0))
	require.Equal(t, "took 1, wait 2m0s", take(b, "alice", 2, t0), "what is left, and when two are")
	require.Equal(t, "took 0, wait 1m0s", take(b, "alice", 1, t0), "the burst is spent")
	require.Equal(t, "took 0, wait 30s", take(b, "alice", 1, t0.Add(30*time.Second)), "a refusal spends nothing")
	require.Equal(t, "took 1, wait 2m30s", take(b, "alice", 5, t0.Add(90*time.Second)), "one earned, half of the next on its way; three at most")
	require.Equal(t, "took 0, wait 30s", take(b, "alice", 1, t0.Add(90*time.Second)))
	require.Equal(t, "took 3, wait 0s", take(b, "bob", 3, t0), "another key's bucket is full")

	require.Equal(t, "took 3, wait 0s", take(b, "carol", 3, t0))
	require.Equal(t, "took 3, wait 3m0s", take(b, "carol", 10, t0.Add(time.Hour)), "a bucket fills up again, to Burst and no more")
	require.Equal(t, "took 0, wait 1m0s", take(b, "carol", 1, t0.Add(time.Hour)))
	require.Equal(t, "took 0, wait 3m0s", take(b, "carol", 3, t0.Add(time.Hour)), "the wait for all three")
}

func TestBudgetZeroAllowsAll(t *testing.T) {
	var nilBudget *Budget
	require.Equal(t, "took 100, wait 0s", take(nilBudget, "alice", 100, time.Now()))
	require.Equal(t, "took 100, wait 0s", take(&Budget{}, "alice", 100, time.Now()))
}

// Keys whose buckets are full again are forgotten once the map has
// doubled, so a stream of users costs memory for the recent ones only;
// a key still spending is kept.
func TestBudgetForgetsFullBuckets(t *testing.T) {
	b := &Budget{Burst: 2, Every: time.Second}
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	require.Equal(t, "took 2, wait 0s", take(b, "busy", 2, t0))
	for i := range 5000 {
		require.Equal(t, "took 1, wait 0s", take(b, fmt.Sprint("user", i), 1, t0.Add(time.Duration(i)*time.Millisecond)))
	}
	b.mu.Lock()
	kept := len(b.full)
	_, busy := b.full["busy"]
	b.mu.Unlock()
	require.Less(t, kept, 2*1024+1000, "the full buckets were forgotten")
	require.False(t, busy, "busy's bucket was full again by then")

	require.Equal(t, "took 2, wait 0s", take(b, "busy", 2, t0.Add(10*time.Second)))
	require.Equal(t, "took 0, wait 1s", take(b, "busy", 1, t0.Add(10*time.Second)))
}

// Concurrent takes of one key never spend more than it has.
func TestBudgetConcurrent(t *testing.T) {
	b := &Budget{Burst: 50, Every: time.Hour}
	now := time.Now()
	var mu sync.Mutex
	spent := 0
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			took, _ := b.Take("alice", 1, now)
			mu.Lock()
			spent += took
			mu.Unlock()
		})
	}
	wg.Wait()
	require.Equal(t, 50, spent)
}
