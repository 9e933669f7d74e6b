package receipts

import (
	"crypto/sha256"
	"sync"
)

// chainCacheCap bounds memory. Apple rotates leaf certificates a few times
// a year, so a real deployment needs a handful of entries; the cap only
// matters against an attacker minting chains, and they never get cached
// because only chains that verified are stored.
const chainCacheCap = 1024

// chainKey is SHA-256(leaf DER) || SHA-256(intermediate DER) ||
// SHA-256(root DER). A hit needs the exact same bytes of all three, so it
// can only skip signature checks that already passed on those bytes.
type chainKey [3 * sha256.Size]byte

func newChainKey(leaf, intermediate, root []byte) chainKey {
	var k chainKey
	for i, der := range [][]byte{leaf, intermediate, root} {
		sum := sha256.Sum256(der)
		copy(k[i*sha256.Size:], sum[:])
	}
	return k
}

// chainCache remembers chains whose certificate signatures verified. It is
// safe for concurrent use and its zero value is ready.
type chainCache struct {
	mu sync.RWMutex
	m  map[chainKey]struct{}
}

func (c *chainCache) has(k chainKey) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.m[k]
	return ok
}

func (c *chainCache) add(k chainKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[chainKey]struct{})
	}
	if len(c.m) >= chainCacheCap {
		// Evict one arbitrary entry: map order is unspecified, and any
		// victim is fine because a miss only costs a re-check.
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = struct{}{}
}
