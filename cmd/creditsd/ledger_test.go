package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements/sqlite"
)

// TestPrintCheck: the summary line counts what was read and found, says
// when the list was cut, and the command fails on any mismatch.
func TestPrintCheck(t *testing.T) {
	for _, tc := range []struct {
		found, listed int
		last          string
	}{
		{0, 0, "ledger check: 3 lots, 2 users, 1 allowance counters, 4 totals: ok"},
		{1, 1, "ledger check: 3 lots, 2 users, 1 allowance counters, 4 totals: 1 mismatch"},
		{51, 50, "ledger check: 3 lots, 2 users, 1 allowance counters, 4 totals: 51 mismatches (the first 50 listed)"},
	} {
		c := sqlite.LedgerCheck{Lots: 3, Users: 2, AllowanceCounters: 1, Totals: 4, Found: int64(tc.found)}
		for i := range tc.listed {
			c.Mismatches = append(c.Mismatches, fmt.Sprint("mismatch ", i))
		}
		var out bytes.Buffer
		err := printCheck(&out, c)
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		require.Len(t, lines, tc.listed+1)
		require.Equal(t, tc.last, lines[tc.listed])
		if tc.found == 0 {
			require.NoError(t, err)
		} else {
			require.ErrorIs(t, err, errLedgerMismatch)
		}
	}
}
