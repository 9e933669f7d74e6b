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

// Take spends up to n for key at now, as much as key has, and says how
// much it spent; when that is less than n, wait is how long until key has
// all n again (at most Burst): a caller that must ask for the same n then
// gets them all, where waiting for one more it would spend that one on
// the same first of them, and come back for ever.
func (b *Budget) Take(key string, n int, now time.Time) (took int, wait time.Duration) {
	if b == nil || b.Burst <= 0 || b.Every <= 0 || n <= 0 {
		return max(n, 0), 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	full := b.full[key]
	if full.Before(now) {
		full = now
	}
	room := time.Duration(b.Burst)*b.Every - full.Sub(now) // what key may still spend, in time
	took = min(n, int(room/b.Every))
	if took < n {
		wait = time.Duration(min(n, b.Burst))*b.Every - (room - time.Duration(took)*b.Every)
	}
	if took == 0 {
		return 0, wait
	}
	if b.full == nil {
		b.full = map[string]time.Time{}
	}
	b.full[key] = full.Add(time.Duration(took) * b.Every)
	b.prune(now)
	return took, wait
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
