package sqlite

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkExpireLots expires lots in batches that walk 2,000 lots from a
// database that holds b.N expired lots among as many live ones: the
// sweep's cost per lot.
func BenchmarkExpireLots(b *testing.B) {
	db := openTest(b)
	ctx := context.Background()
	past, future := millis(testNow.Add(-time.Hour)), millis(testNow.AddDate(1, 0, 0))
	err := db.update(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (user_id, app_account_token, created_at) VALUES ('u', 't', 0)`); err != nil {
			return err
		}
		for i := range 2 * b.N {
			exp := past
			if i%2 == 1 {
				exp = future
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO lots (lot_id, user_id, source, granted, remaining, granted_at,
				expires_at, created_at) VALUES (?, 'u', 'admin', 10, 10, 0, ?, 0)`, fmt.Sprintf("l%d", i), exp); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	if total := sweepAll(b, db, testNow, 2000).Lots; total != int64(b.N) {
		b.Fatalf("expired %d lots, want %d", total, b.N)
	}
}

// BenchmarkSweepBesideSpends is the scheduled sweep inside the server: it
// expires 200k lots in batches that walk 2,000 while 32 goroutines spend through
// the same writer, and reports the sweep's time and the spends' latency.
func BenchmarkSweepBesideSpends(b *testing.B) {
	const expired, spenders = 200_000, 32
	for range b.N {
		db := openTest(b)
		ctx := context.Background()
		seedExpired(b, db, expired)
		for u := range 256 {
			grantAdmin(b, db, fmt.Sprintf("s%d", u), "seed", 1<<30, nil)
		}
		stop := make(chan struct{})
		lat := make(chan []time.Duration, spenders)
		for w := range spenders {
			go func() {
				var l []time.Duration
				for i := 0; ; i++ {
					select {
					case <-stop:
						lat <- l
						return
					default:
					}
					t := time.Now()
					if _, _, _, err := db.Spend(ctx, spendReq(fmt.Sprintf("s%d", (w*31+i)%256), fmt.Sprintf("w%d-%d", w, i), 1)); err != nil {
						b.Error(err)
					}
					l = append(l, time.Since(t))
				}
			}()
		}
		time.Sleep(200 * time.Millisecond)
		start := time.Now()
		sweepAll(b, db, testNow, 2000)
		sweep := time.Since(start)
		close(stop)
		var all []time.Duration
		for range spenders {
			all = append(all, <-lat...)
		}
		slices.Sort(all)
		b.ReportMetric(sweep.Seconds()*1e6/expired, "µs/lot")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "spend-p99-ms")
		b.ReportMetric(float64(len(all))/sweep.Seconds(), "spends/s")
	}
}

func seedExpired(b *testing.B, db *DB, n int) {
	past := millis(testNow.Add(-time.Hour))
	err := db.update(context.Background(), func(tx *Tx) error {
		if _, err := tx.ExecContext(context.Background(), `INSERT INTO users (user_id, app_account_token, created_at) VALUES ('x', 'tx', 0)`); err != nil {
			return err
		}
		for i := range n {
			if _, err := tx.ExecContext(context.Background(), `INSERT INTO lots (lot_id, user_id, source, granted, remaining,
				granted_at, expires_at, created_at) VALUES (?, 'x', 'admin', 10, 10, 0, ?, 0)`, fmt.Sprintf("e%d", i), past); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
