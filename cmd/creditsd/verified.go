package main

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/creditsd/creditsd/entitlements"
)

// maxVerifiedTokens bounds the tokens verifiedTokens keeps: ~100 bytes
// each, so ~7 MB when full.
const maxVerifiedTokens = 1 << 16

// verifiedTokens remembers bearer tokens that passed every check, by the
// SHA-256 of the whole token, with the caller they name and the window in
// which the parser's time checks pass them. A client sends the same token
// on every call until it expires, and parsing it again (two JSON
// documents, the signature) was ~9 % of a read's CPU over HTTP
// (BENCHMARKS.md, session 18). Envoy's jwt_authn filter keeps such a cache
// for the same reason. Only tokens that verified are kept, so a flood of
// bad tokens cannot fill it; a token outside its window is parsed again,
// which gives the same answer it would have had.
type verifiedTokens struct {
	mu     sync.Mutex
	tokens map[[sha256.Size]byte]verifiedToken
}

type verifiedToken struct {
	caller      entitlements.Caller
	from, until time.Time // valid from from (zero: any time), and before until
}

func newVerifiedTokens() *verifiedTokens {
	return &verifiedTokens{tokens: make(map[[sha256.Size]byte]verifiedToken)}
}

// caller is the remembered token's caller, if it is remembered and now is
// inside its window.
func (v *verifiedTokens) caller(key [sha256.Size]byte, now time.Time) (entitlements.Caller, bool) {
	v.mu.Lock()
	t, ok := v.tokens[key]
	v.mu.Unlock()
	if !ok || now.Before(t.from) || !now.Before(t.until) {
		return entitlements.Caller{}, false
	}
	return t.caller, true
}

// remember keeps a verified token, making room by forgetting one at random
// (Go's map iteration starts anywhere) when full.
func (v *verifiedTokens) remember(key [sha256.Size]byte, t verifiedToken) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.tokens) >= maxVerifiedTokens {
		for k := range v.tokens {
			delete(v.tokens, k)
			break
		}
	}
	v.tokens[key] = t
}
