package entitlements

import (
	"sync"
	"time"
)

// Budget bounds how much each key (a user) may spend of something costly,
// here lookups at the App Store for unproven receipts: Burst at once, and
// one more every Every after that. It is a token bucket kept as the moment
// each key's bucket is full again (the generic cell rate algorithm), so a
// key that has waited long enough costs nothing to forget. Safe for
// concurrent use; the zero Budget allows everything.
type Budget struct {
	Burst int
	Every time.Duration

	mu     sync.Mutex
	full   map[string]time.Time // when each key's bucket is full again
	pruned int                  // len(full) after the last prune
}

// Take spends n for key at now, or, when key cannot afford n yet, spends
// nothing and says how long to wait until it can. n above Burst is taken
// as Burst, so that no request waits for ever.
func (b *Budget) Take(key string, n int, now time.Time) (wait time.Duration) {
	if b == nil || b.Burst <= 0 || b.Every <= 0 || n <= 0 {
		return 0
	}
	n = min(n, b.Burst)
	b.mu.Lock()
	defer b.mu.Unlock()
	full := b.full[key]
	if full.Before(now) {
		full = now
	}
	full = full.Add(time.Duration(n) * b.Every)
	if over := full.Sub(now) - time.Duration(b.Burst)*b.Every; over > 0 {
		return over
	}
	if b.full == nil {
		b.full = map[string]time.Time{}
	}
	b.full[key] = full
	b.prune(now)
	return 0
}

// prune forgets the keys whose buckets are full again, each time the map
// has doubled since the last prune: memory stays within twice the keys
// that spent within Burst×Every, at a cost spread over the takes.
func (b *Budget) prune(now time.Time) {
	if len(b.full) < 2*max(b.pruned, 1024) {
		return
	}
	for key, full := range b.full {
		if !full.After(now) {
			delete(b.full, key)
		}
	}
	b.pruned = len(b.full)
}
