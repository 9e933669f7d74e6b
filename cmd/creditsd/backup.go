package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/creditsd/creditsd/entitlements/sqlite"
)

// backupCommand is `creditsd backup FILE`: a consistent copy of the
// database, taken beside a live server without stopping it (it reads, as
// ledger check does), to a new file. Copying the database file instead
// loses what its WAL holds, which in a running server is often everything
// since the last checkpoint.
func backupCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, configPath := newFlagSet("backup", stderr)
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 || rest[0] == "" {
		return usageError{msg: "usage: creditsd backup FILE [--config FILE]"}
	}
	s, _, err := loadLogged(*configPath, getenv, stderr)
	if err != nil {
		return err
	}
	if err := sqlite.Backup(ctx, s.Config.Database, rest[0]); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	info, err := os.Stat(rest[0])
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "backup: %s (%d bytes) of %s\n", rest[0], info.Size(), s.Config.Database)
	return err
}
