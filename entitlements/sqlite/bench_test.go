package sqlite

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/creditsd/creditsd/entitlements"
)

// BenchmarkSpend charges 1 credit per spend, with as many concurrent
// callers as -cpu × SetParallelism (32 by default here), on a real file
// database with synchronous=FULL: the group commit at work. Each spend
// takes one path: the allowance pays it (the allowance is unbounded), or
// lots do (there is none). With the default allowance of 30 a day, its
// first 7,680 spends took the allowance and the rest lots, and the time
// an operation grew with b.N.
func BenchmarkSpend(b *testing.B) {
	for _, c := range []struct {
		name      string
		allowance int64
	}{{"allowance", 1 << 40}, {"lots", 0}} {
		b.Run(c.name, func(b *testing.B) {
			db := openTest(b)
			db.Policy.Allowance.Tiers = map[string]int64{entitlements.TierFree: c.allowance, entitlements.TierPro: c.allowance}
			benchSpends(b, db)
		})
	}
}

// benchSpends spends 1 credit at a time for 256 users, each with a lot
// that never runs out.
func benchSpends(b *testing.B, db *DB) {
	const users = 256
	for u := range users {
		grantAdmin(b, db, fmt.Sprintf("u%d", u), "seed", 1<<40, nil)
	}
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			user := fmt.Sprintf("u%d", i%users)
			if _, _, _, err := db.Spend(context.Background(), spendReq(user, fmt.Sprintf("k%d", i), 1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkGrant records and grants one purchase per call, as the webhook does.
func BenchmarkGrant(b *testing.B) {
	db := openTest(b)
	const users = 256
	for u := range users {
		_ = state(b, db, fmt.Sprintf("u%d", u))
	}
	var n atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			user := fmt.Sprintf("u%d", i%users)
			p := purchase(fmt.Sprintf("t%d", i), tokens.Token(user))
			_, err := db.RecordNotification(context.Background(), Notification{UUID: fmt.Sprintf("n%d", i),
				Type: "ONE_TIME_CHARGE", SignedDate: p.SignedDate, TransactionID: p.TransactionID, JWS: "x", Source: "webhook", Outcome: "granted"},
				Effect{Purchase: &p, Grant: plan(b, p)})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkEntitlementRead reads an existing user's state, the hot read path.
func BenchmarkEntitlementRead(b *testing.B) {
	db := openTest(b)
	for i := range 10 { // the load generator's 10 lots a user
		grantAdmin(b, db, "alice", fmt.Sprintf("seed%d", i), 10, nil)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			st, err := db.UserState(context.Background(), "alice", tokens.Token("alice"), "service:test")
			if err != nil {
				b.Error(err)
				return
			}
			_ = entitlements.Compute(st, db.Policy.Allowance)
		}
	})
}
