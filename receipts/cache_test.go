package receipts

import (
	"crypto/x509"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/stretchr/testify/require"
)

func TestCacheRemembersVerifiedChains(t *testing.T) {
	ca := newCA(t, devca.Options{})
	v := verifierFor(ca)
	for range 3 {
		_, err := v.VerifyTransaction(sign(t, ca, txPayload(time.Now())))
		require.NoError(t, err)
	}
	require.Equal(t, 1, v.cache.len())
	require.True(t, v.cache.has(newChainKey(ca.Leaf.Raw, ca.Intermediate.Raw, ca.Root.Raw)))
}

// TestCacheNeverStoresFailures: a chain that failed leaves no entry, so an
// attacker cannot fill the cache or get a later pass.
func TestCacheNeverStoresFailures(t *testing.T) {
	ours, attacker := newCA(t, devca.Options{}), newCA(t, devca.Options{})
	v := verifierFor(ours)
	for range 2 {
		_, err := v.VerifyTransaction(sign(t, attacker, txPayload(time.Now())))
		requireCode(t, err, CodeChain)
	}
	require.Zero(t, v.cache.len())
}

// TestCacheHitStillChecksValidity: the cache skips signatures, never the
// validity window, which depends on each payload's signedDate.
func TestCacheHitStillChecksValidity(t *testing.T) {
	now := time.Now()
	ca := newCA(t, devca.Options{LeafNotAfter: now.Add(-time.Minute)})
	v := verifierFor(ca)
	_, err := v.VerifyTransaction(sign(t, ca, txPayload(now.Add(-2*time.Minute))))
	require.NoError(t, err)
	require.Equal(t, 1, v.cache.len())
	_, err = v.VerifyTransaction(sign(t, ca, txPayload(now)))
	requireCode(t, err, CodeCertificate)
}

// TestCacheHitNeedsSameRoot: an entry made under one root does not vouch
// for the chain once the Verifier's roots change.
func TestCacheHitNeedsSameRoot(t *testing.T) {
	ca, other := newCA(t, devca.Options{}), newCA(t, devca.Options{})
	v := verifierFor(ca)
	s := sign(t, ca, txPayload(time.Now()))
	_, err := v.VerifyTransaction(s)
	require.NoError(t, err)
	v.Roots = []*x509.Certificate{other.Root}
	_, err = v.VerifyTransaction(s)
	requireCode(t, err, CodeChain)
}

// TestCacheHitNeedsSameIntermediate: our cached leaf presented with the
// attacker's intermediate misses and fails.
func TestCacheHitNeedsSameIntermediate(t *testing.T) {
	ours, attacker := newCA(t, devca.Options{}), newCA(t, devca.Options{})
	v := verifierFor(ours)
	_, err := v.VerifyTransaction(sign(t, ours, txPayload(time.Now())))
	require.NoError(t, err)
	s, err := ours.SignWithChain(txPayload(time.Now()), []*x509.Certificate{ours.Leaf, attacker.Intermediate, ours.Root})
	require.NoError(t, err)
	_, err = v.VerifyTransaction(s)
	requireCode(t, err, CodeChain)
}

func TestCacheBounded(t *testing.T) {
	var c chainCache
	for i := range chainCacheCap + 100 {
		c.add(newChainKey([]byte{byte(i), byte(i >> 8)}, nil, nil))
	}
	require.Equal(t, chainCacheCap, c.len())
	c.clear()
	require.Zero(t, c.len())
}

// TestVerifierConcurrent runs under -race in CI.
func TestVerifierConcurrent(t *testing.T) {
	cas := []*devca.CA{newCA(t, devca.Options{}), newCA(t, devca.Options{})}
	v := verifierFor(cas[0])
	v.Roots = []*x509.Certificate{cas[0].Root, cas[1].Root}
	jws := []string{sign(t, cas[0], txPayload(time.Now())), sign(t, cas[1], txPayload(time.Now()))}
	errs := make(chan error, 8*20)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				_, err := v.VerifyTransaction(jws[(g+i)%2])
				errs <- err
				if i == 10 && g == 0 {
					v.cache.clear()
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// len and clear are what the tests read and reset of a chainCache; the
// Verifier needs only has and add.

func (c *chainCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

func (c *chainCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = nil
}

// TestHeaderCacheKeepsOnlyVerifiedHeaders: a header is remembered once its
// JWS verified, never before. Headers that parse but do not chain to a
// root, or whose signature fails, would let anyone fill the cache with
// certificates as big as a body allows (an audit's 200 MB).
func TestHeaderCacheKeepsOnlyVerifiedHeaders(t *testing.T) {
	ours, attacker := newCA(t, devca.Options{}), newCA(t, devca.Options{})
	v := verifierFor(ours)
	_, err := v.VerifyTransaction(sign(t, attacker, txPayload(time.Now())))
	requireCode(t, err, CodeChain)
	require.Empty(t, v.headers.m, "a chain to no root of ours")

	good := sign(t, ours, txPayload(time.Now()))
	head, rest, _ := strings.Cut(good, ".")
	payload, sig, _ := strings.Cut(rest, ".")
	forged := head + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"signedDate":1}`)) + "." + sig
	_, err = v.VerifyTransaction(forged)
	requireCode(t, err, CodeSignature)
	require.Empty(t, v.headers.m, "our chain, but a signature that fails")

	_, err = v.VerifyTransaction(good)
	require.NoError(t, err)
	require.Len(t, v.headers.m, 1)
	require.Contains(t, v.headers.m, head)
	_, err = v.VerifyTransaction(head + "." + payload + "." + sig)
	require.NoError(t, err, "the remembered header still verifies")
}
