package receipts

import (
	"crypto/sha256"
	"crypto/x509"
	"sync"
	"time"
)

// maxTracked bounds the signing certificates remembered; Apple uses a few.
const maxTracked = 256

// certExpiry remembers the NotAfter of the leaf and intermediate
// certificates of every payload that verified, so operators learn before
// Apple's signing certificates lapse (Apple rotates them; a lapsed one
// means payloads signed after it will be refused).
type certExpiry struct {
	mu       sync.Mutex
	notAfter map[[32]byte]time.Time
}

func (e *certExpiry) remember(certs ...*x509.Certificate) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.notAfter == nil {
		e.notAfter = make(map[[32]byte]time.Time)
	}
	for _, c := range certs {
		fp := sha256.Sum256(c.Raw)
		if _, ok := e.notAfter[fp]; !ok && len(e.notAfter) < maxTracked {
			e.notAfter[fp] = c.NotAfter
		}
	}
}

// EarliestNotAfter is the soonest NotAfter, after now, among the signing
// certificates (leaf and intermediate) of the payloads this verifier has
// accepted; false if it has seen none still valid. Certificates that lapsed
// already are left out: Apple has replaced them.
func (v *Verifier) EarliestNotAfter(now time.Time) (time.Time, bool) {
	v.expiry.mu.Lock()
	defer v.expiry.mu.Unlock()
	var earliest time.Time
	for _, t := range v.expiry.notAfter {
		if t.After(now) && (earliest.IsZero() || t.Before(earliest)) {
			earliest = t
		}
	}
	return earliest, !earliest.IsZero()
}
