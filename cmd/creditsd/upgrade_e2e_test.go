package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite" // to mark the database as a newer binary would
)

// A database a newer creditsd has migrated is refused by this one, by
// every command that opens it, with the reason and exit code 1: an older
// binary's statements may fail on the newer schema or leave its tables
// behind, and a rollback is a restore of the backup.
func TestOlderBinaryRefusesANewerDatabase(t *testing.T) {
	w := newWorld(t)
	w.proc.stop(t)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(w.dir, "creditsd.db"))
	require.NoError(t, err)
	_, err = db.Exec(`INSERT INTO schema_migrations (name) VALUES ('migrations/9999_from_the_future.sql')`)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	for _, args := range [][]string{{"serve"}, {"jobs", "run", "expiry-sweep"}} {
		// Bounded: without the refusal, serve would listen and never exit.
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, append(args, "--config", w.config)...)
		cmd.WaitDelay = 5 * time.Second
		cmd.Env = append(os.Environ(), "CREDITSD_CONFIG=")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		require.True(t, errors.As(err, &exit), "%v: %v\n%s", args, err, stderr.String())
		require.Equal(t, 1, exit.ExitCode(), args)
		require.Contains(t, stderr.String(), "the database was migrated by a newer creditsd: it has 9999_from_the_future.sql", args)
		require.NotContains(t, stderr.String(), `"msg":"listening"`, args)
	}
}
