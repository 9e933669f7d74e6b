package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkExpireLots expires lots in batches of 1000 from a database that
// holds b.N expired lots among as many live ones: the sweep's cost per lot.
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
	var total int64
	for {
		e, err := db.ExpireLots(ctx, testNow, 1000, "job:bench")
		if err != nil {
			b.Fatal(err)
		}
		total += e.Lots
		if e.Lots < 1000 {
			break
		}
	}
	if total != int64(b.N) {
		b.Fatalf("expired %d lots, want %d", total, b.N)
	}
}
