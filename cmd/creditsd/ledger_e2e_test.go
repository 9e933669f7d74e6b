package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/entitlements/sqlite"
	"github.com/creditsd/creditsd/jobs"
)

// TestLedgerCheckEndToEnd: `creditsd ledger check` beside a live server
// finds a ledger that rebuilds whole, exits 0; once a stored figure
// differs from its entries, it names it and exits 1.
func TestLedgerCheckEndToEnd(t *testing.T) {
	w := newWorld(t)
	w.do("POST", "/v1/users/alice/grants", w.admin(), map[string]any{"idempotency_key": "g", "credits": 10, "reason": "welcome"})
	for i, credits := range []int{25, 8} {
		sp := w.spend("alice", map[string]any{"idempotency_key": fmt.Sprint("s", i), "product": "sora", "credits": credits})
		require.Equal(t, 201, sp.status, sp.raw)
	}

	out, errOut, code := cli(t, "", nil, "ledger", "check", "--config", w.config)
	require.Zero(t, code, out+errOut)
	require.Equal(t, "ledger check: 1 lots, 1 users, 1 allowance counters, 2 totals: ok\n", out)

	w.proc.stop(t)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(w.dir, "creditsd.db"))
	require.NoError(t, err)
	_, err = db.Exec(`UPDATE lots SET remaining = remaining + 2 WHERE user_id = 'alice'`) // credits from nowhere
	require.NoError(t, err)
	require.NoError(t, db.Close())
	out, errOut, code = cli(t, "", nil, "ledger", "check", "--config", w.config)
	require.Equal(t, 1, code, out+errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	require.Regexp(t, `^lot \S+ of user alice: remaining 9, granted 10; its entries sum to 7$`, lines[0])
	require.Equal(t, "ledger check: 1 lots, 1 users, 1 allowance counters, 2 totals: 1 mismatch", lines[1])
	require.Contains(t, errOut, "the ledger does not rebuild every figure stored beside it")

	stopped, cancel := context.WithCancel(context.Background())
	cancel() // a signal (main's context)
	err = run(stopped, []string{"ledger", "check", "--config", w.config}, func(string) string { return "" }, io.Discard, io.Discard)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorContains(t, err, "ledger check: stopped before it finished")
	require.Equal(t, 3, exitCode(err), "not a mismatch's 1")

	_, _, code = cli(t, "", nil, "ledger", "verify", "--config", w.config)
	require.Equal(t, 2, code, "a usage error")

	// A mistyped database path fails; it is neither created nor called whole.
	base, err := os.ReadFile(w.config)
	require.NoError(t, err)
	typo := filepath.Join(w.dir, "typo.db")
	config := filepath.Join(w.dir, "typo.yaml")
	edited := strings.Replace(string(base), filepath.Join(w.dir, "creditsd.db"), typo, 1)
	require.NotEqual(t, string(base), edited)
	require.NoError(t, os.WriteFile(config, []byte(edited), 0o600))
	out, errOut, code = cli(t, "", nil, "ledger", "check", "--config", config)
	require.Equal(t, 1, code, out+errOut)
	require.NoFileExists(t, typo)
}

// TestLedgerCheckKeepsTheResetsDays: ledger check counts the kept days as
// the daily reset recorded them (keep_days before the day it ran): the days
// it pruned are no mismatch, also after keep_days is raised, and a counter
// missing on its oldest kept day is.
func TestLedgerCheckKeepsTheResetsDays(t *testing.T) {
	ctx := context.Background()
	dir, config := writeConfig(t, newCA(t), "jobs:\n  daily_reset: {keep_days: 2}\n")
	db, err := sqlite.Open(ctx, filepath.Join(dir, "creditsd.db"))
	require.NoError(t, err)
	tokens := mustTokens(t)
	now := time.Now()
	for d := range 5 {
		db.Now = func() time.Time { return now.AddDate(0, 0, -d) }
		for _, user := range []string{"alice", "bob"} {
			_, _, _, err := db.Spend(ctx, entitlements.SpendRequest{UserID: user, Token: tokens.Token(user),
				Key: fmt.Sprint("s", d), Hash: "h", Product: "sora", Credits: 1, Actor: "service:test"})
			require.NoError(t, err)
		}
	}
	db.Now = func() time.Time { return now }
	allowance := entitlements.DefaultAllowance()
	_, err = jobs.DailyReset(db, allowance, 2, 90)(ctx, now)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	check := func(flags ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append([]string{"ledger", "check", "--config", config}, flags...), func(string) string { return "" }, &out, io.Discard)
		return out.String(), err
	}
	out, err := check()
	require.NoError(t, err, out)
	require.Equal(t, "ledger check: 0 lots, 2 users, 6 allowance counters, 1 totals: ok\n", out, "3 days kept of 5")

	// keep_days raised, and the reset run with it: the days pruned before
	// stay pruned, and are no mismatch.
	yaml, err := os.ReadFile(config)
	require.NoError(t, err)
	raised := strings.Replace(string(yaml), "keep_days: 2", "keep_days: 4", 1)
	require.NotEqual(t, string(yaml), raised)
	require.NoError(t, os.WriteFile(config, []byte(raised), 0o600))
	db, err = sqlite.Open(ctx, filepath.Join(dir, "creditsd.db"))
	require.NoError(t, err)
	db.Now = func() time.Time { return now }
	_, err = jobs.DailyReset(db, allowance, 4, 90)(ctx, now)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	out, err = check()
	require.NoError(t, err, out)
	require.Equal(t, "ledger check: 0 lots, 2 users, 6 allowance counters, 1 totals: ok\n", out, "as the reset recorded")

	oldest := allowance.Day(now).KeyBefore(2)
	pool, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "creditsd.db"))
	require.NoError(t, err)
	_, err = pool.Exec(`DELETE FROM allowance_usage WHERE day = ? AND user_id = 'bob'`, oldest)
	require.NoError(t, err)
	require.NoError(t, pool.Close())
	out, err = check()
	require.ErrorIs(t, err, errLedgerMismatch)
	require.Contains(t, out, "allowance of user bob on "+oldest+": no counter; her entries say 1\n")

	// --kept-from names another first day: a later one skips the oldest
	// kept day, an earlier one counts a pruned day's counters as missing.
	out, err = check("--kept-from", allowance.Day(now).KeyBefore(1))
	require.NoError(t, err, out)
	out, err = check("--kept-from", allowance.Day(now).KeyBefore(3))
	require.ErrorIs(t, err, errLedgerMismatch)
	require.Contains(t, out, "allowance of user alice on "+allowance.Day(now).KeyBefore(3)+": no counter; her entries say 1\n")
	var usage usageError
	for _, day := range []string{"yesterday", "2026-02-30", allowance.Day(now).KeyBefore(-2)} {
		_, err = check("--kept-from", day)
		require.ErrorAs(t, err, &usage, day)
	}
}
