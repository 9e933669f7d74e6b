package main

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
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
