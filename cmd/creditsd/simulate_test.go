package main

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/creditsd/creditsd/receipts/devca/simulator"
)

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"-13mo":                time.Date(2025, 2, 28, 12, 0, 0, 0, time.UTC), // clamped, as a lot's months are
		"-1mo":                 time.Date(2026, 2, 28, 12, 0, 0, 0, time.UTC),
		"-12mo":                time.Date(2025, 3, 31, 12, 0, 0, 0, time.UTC),
		"-30d":                 time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		"-36h":                 now.Add(-36 * time.Hour),
		"2025-01-31":           time.Date(2025, 1, 31, 0, 0, 0, 0, time.UTC),
		"2025-01-31T10:00:00Z": time.Date(2025, 1, 31, 10, 0, 0, 0, time.UTC),
	} {
		got, err := parseWhen(in, now)
		require.NoError(t, err, in)
		require.True(t, want.Equal(got), "%s: got %s, want %s", in, got, want)
	}
	for _, in := range []string{"", "yesterday", "-", "-mo", "-+3d", "-3x", "13mo", "2025-13-01"} {
		_, err := parseWhen(in, now)
		require.Error(t, err, in)
	}
}

func TestServerURL(t *testing.T) {
	for listen, want := range map[string]string{
		"127.0.0.1:8080":  "http://127.0.0.1:8080",
		"0.0.0.0:8080":    "http://127.0.0.1:8080",
		":9000":           "http://127.0.0.1:9000",
		"[::]:8080":       "http://[::1]:8080",
		"[::1]:8080":      "http://[::1]:8080",
		"example.com:443": "http://example.com:443",
	} {
		require.Equal(t, want, serverURL(listen), listen)
	}
}

func TestDescribe(t *testing.T) {
	p := devca.Consumable("b", "LocalTesting", "pack", "2000000000000007", "", time.Now())
	p.Quantity, p.RevocationType, p.RevocationPercentage = 3, "REFUND_PRORATED", 12500
	ev := simulator.Event{Type: "REFUND", NotificationUUID: "u", Transaction: &simulator.Record{User: "alice", Payload: p}}
	require.Equal(t, "REFUND transaction=2000000000000007 product=pack quantity=3 user=alice refund=12.5% notification=u", describe(ev))
	ev = simulator.Event{Type: "TEST", Environment: "LocalTesting", NotificationUUID: "u"}
	require.Equal(t, "TEST environment=LocalTesting notification=u", describe(ev))
	require.Equal(t, "status=200 outcome=granted duplicate=true", webhookAnswer{Status: 200, Outcome: "granted", Duplicate: true}.String())
	require.Equal(t, "status=400 code=invalid_chain", webhookAnswer{Status: 400, Code: "invalid_chain"}.String())
}

func TestStateFile(t *testing.T) {
	dir := t.TempDir()
	path := simulatorStatePath(filepath.Join(dir, "ca") + "/")
	require.Equal(t, filepath.Join(dir, "simulator.json"), path)

	st, err := loadState(path)
	require.NoError(t, err)
	require.Zero(t, st.Sold, "no file is a fresh state")
	st.Sold = 3
	st.Transactions = map[string]*simulator.Record{"2000000000000003": {User: "alice"}}
	require.NoError(t, saveState(path, st))
	again, err := loadState(path)
	require.NoError(t, err)
	require.Equal(t, st, again)
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	require.NoError(t, os.WriteFile(path, []byte("{"), 0o600))
	_, err = loadState(path)
	require.ErrorContains(t, err, path)
}

// The lock makes concurrent runs take turns: no sale is lost or numbered
// twice.
func TestStateLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "simulator.json")
	const runs = 8
	errs := make(chan error, runs)
	var wg sync.WaitGroup
	for range runs {
		wg.Go(func() { errs <- sellOne(path) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	st, err := loadState(path)
	require.NoError(t, err)
	require.EqualValues(t, 8, st.Sold)

	// A lock left by a killed run is taken over once stale.
	require.NoError(t, os.WriteFile(path+".lock", nil, 0o600))
	old := time.Now().Add(-2 * stateLockStale)
	require.NoError(t, os.Chtimes(path+".lock", old, old))
	unlock, err := lockState(path)
	require.NoError(t, err)
	unlock()
}

// sellOne is one simulate run's turn at the state: lock, count a sale, save.
func sellOne(path string) error {
	unlock, err := lockState(path)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := loadState(path)
	if err != nil {
		return err
	}
	st.Sold++
	return saveState(path, st)
}
