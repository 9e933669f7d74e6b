package main

import (
	"crypto/sha256"
	"slices"
	"sync"
	"time"

	"github.com/creditsd/creditsd/entitlements"
)

// maxVerifiedTokens bounds the tokens verifiedTokens keeps. An entry is
// ~200 bytes with the map's own, so ~13 MB when full, which GOGC=400 lets
// the heap grow to several times over (BENCHMARKS.md, session 19).
const maxVerifiedTokens = 1 << 16

// evictionSample is how many entries a full verifiedTokens looks at for
// one that has expired before it forgets one that has not.
const evictionSample = 8

// verifiedTokens remembers bearer tokens that passed every check, by the
// SHA-256 of the whole token, with the caller they name and the window in
// which the time checks pass them (validFrom, validUntil). A client sends the same token
// on every call until it expires, and parsing it again (two JSON
// documents, the signature) was ~9 % of a read's server CPU over HTTP
// (BENCHMARKS.md, session 18). Envoy's jwt_authn filter keeps such a cache
// for the same reason. Only tokens that verified are kept, so a flood of
// bad tokens cannot fill it; a token outside its window is parsed again,
// which gives the same answer it would have had.
type verifiedTokens struct {
	mu     sync.RWMutex
	tokens map[[sha256.Size]byte]verifiedToken
}

// verifiedToken is a remembered token. Its caller is shared by every
// request that presents the token, so nothing may change it.
type verifiedToken struct {
	caller entitlements.Caller
	from   time.Time // the first instant the checks pass it (zero: no bound)
	until  time.Time // the first instant they no longer do
}

func newVerifiedTokens() *verifiedTokens {
	return &verifiedTokens{tokens: make(map[[sha256.Size]byte]verifiedToken)}
}

// caller is the remembered token's caller, if it is remembered and now is
// inside its window.
func (v *verifiedTokens) caller(key [sha256.Size]byte, now time.Time) (entitlements.Caller, bool) {
	v.mu.RLock()
	t, ok := v.tokens[key]
	v.mu.RUnlock()
	if !ok || now.Before(t.from) || !now.Before(t.until) {
		return entitlements.Caller{}, false
	}
	return t.caller, true
}

// remember keeps a verified token. When full it first forgets one: an
// expired one among the few it looks at (Go's map iteration starts
// anywhere), or else the first of them.
func (v *verifiedTokens) remember(key [sha256.Size]byte, t verifiedToken, now time.Time) {
	t.caller.Scopes = slices.Clip(t.caller.Scopes) // an append by a caller copies, never writes into it
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.tokens[key]; !ok && len(v.tokens) >= maxVerifiedTokens {
		v.forgetOne(now)
	}
	v.tokens[key] = t
}

func (v *verifiedTokens) forgetOne(now time.Time) {
	var first [sha256.Size]byte
	seen := 0
	for k, t := range v.tokens {
		if !now.Before(t.until) {
			delete(v.tokens, k)
			return
		}
		if seen == 0 {
			first = k
		}
		if seen++; seen == evictionSample {
			break
		}
	}
	delete(v.tokens, first)
}
