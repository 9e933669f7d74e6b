package receipts

import (
	"testing"
	"time"

	"github.com/creditsd/creditsd/receipts/devca"
)

// The devca chain has Apple's shape (P-384 root and intermediate, P-256
// leaf), so these costs match Apple's payloads.

func BenchmarkVerifyTransactionCold(b *testing.B) {
	ca := newCA(b, devca.Options{})
	s := sign(b, ca, txPayload(time.Now()))
	for b.Loop() {
		v := verifierFor(ca) // empty cache: both chain signatures every time
		if _, err := v.VerifyTransaction(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyTransactionCached(b *testing.B) {
	ca := newCA(b, devca.Options{})
	s := sign(b, ca, txPayload(time.Now()))
	v := verifierFor(ca)
	for b.Loop() {
		if _, err := v.VerifyTransaction(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyNotification verifies an envelope with a nested
// transaction and renewal info: three JWS, chain cached.
func BenchmarkVerifyNotification(b *testing.B) {
	ca := newCA(b, devca.Options{})
	now := time.Now()
	d := notificationData(Sandbox)
	d["signedTransactionInfo"] = sign(b, ca, txPayload(now))
	d["signedRenewalInfo"] = sign(b, ca, renewalPayload(now))
	s := sign(b, ca, notificationPayload(now, d))
	v := verifierFor(ca)
	for b.Loop() {
		if _, err := v.VerifyNotification(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyNotificationParallel shows the cache under contention.
func BenchmarkVerifyNotificationParallel(b *testing.B) {
	ca := newCA(b, devca.Options{})
	now := time.Now()
	d := notificationData(Sandbox)
	d["signedTransactionInfo"] = sign(b, ca, txPayload(now))
	s := sign(b, ca, notificationPayload(now, d))
	v := verifierFor(ca)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.VerifyNotification(s); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
