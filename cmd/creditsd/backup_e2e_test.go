package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A backup taken beside the live server holds what was acknowledged before
// it, whatever the WAL held then; restored as the README says (server
// stopped, the old WAL and its index deleted, the copy in place), the
// server answers as it did at the backup, and the ledger rebuilds.
func TestBackupAndRestore(t *testing.T) {
	w := newWorld(t)
	w.entitlement("alice")
	for i := range 3 {
		a := w.spend("alice", map[string]any{"idempotency_key": fmt.Sprintf("before-%d", i), "product": "sora", "credits": 2})
		require.Equal(t, http.StatusCreated, a.status, a.raw)
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	stdout, stderr, code := cli(t, w.dir, nil, "backup", backup, "--config", w.config)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "backup: "+backup)
	_, err := os.Stat(backup + "-wal")
	require.ErrorIs(t, err, os.ErrNotExist, "one file, nothing in a WAL beside it")

	a := w.spend("alice", map[string]any{"idempotency_key": "after", "product": "sora", "credits": 5})
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	require.Equal(t, int64(11), w.entitlement("alice").Allowance.Used)

	_, stderr, code = cli(t, w.dir, nil, "backup", backup, "--config", w.config)
	require.Equal(t, 1, code, "never over an existing file")
	require.Contains(t, stderr, "file already exists")
	_, _, code = cli(t, w.dir, nil, "backup", "--config", w.config)
	require.Equal(t, 2, code, "a file to write is required")

	w.proc.stop(t)
	db := filepath.Join(w.dir, "creditsd.db")
	for _, f := range []string{db + "-wal", db + "-shm"} {
		require.NoError(t, os.RemoveAll(f))
	}
	data, err := os.ReadFile(backup)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(db, data, 0o600))
	w.proc = start(t, "serve", "--config", w.config)
	require.Equal(t, int64(6), w.entitlement("alice").Allowance.Used, "as it was at the backup")
	stdout, stderr, code = cli(t, w.dir, nil, "ledger", "check", "--config", w.config)
	require.Equal(t, 0, code, stdout+stderr)
}
