package main

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	store "github.com/creditsd/creditsd/entitlements/sqlite"
)

// cachedSeed is the file beside a cached database: when it was seeded
// (the lots that expire are relative to that) and how.
type cachedSeed struct {
	SeededAt time.Time  `json:"seeded_at"`
	Report   seedReport `json:"report"`
}

// seedCached seeds path as seed does, or, with a cache directory, copies a
// database seeded by an earlier run with the same plan: seeding 1M users
// and 10M lots takes minutes, and a side-by-side measurement wants the
// same database under both binaries. A copy is migrated before the server
// starts, so the server never spends measured time on it. It returns the
// plan's now for the database it left: the cached one's, for a copy.
func seedCached(ctx context.Context, cacheDir, path string, plan seedPlan, progress io.Writer) (seedReport, time.Time, error) {
	if cacheDir == "" {
		rep, err := seed(ctx, path, plan, progress)
		return rep, plan.now, err
	}
	order := ""
	if plan.byTime {
		// By-user seeds keep the names they had before --lot-order; by-time
		// seeds before session 34 put their expired lots on a tenth of the
		// users (expiredLot), and keep their own name, never reused.
		order = "-bytime-v2"
	}
	name := filepath.Join(cacheDir, fmt.Sprintf("seed-u%d-l%d-e%d-together%t%s.db", plan.users, plan.lots, plan.expired, plan.together, order))
	var meta cachedSeed
	if data, err := os.ReadFile(name + ".json"); err == nil && json.Unmarshal(data, &meta) == nil {
		start := time.Now()
		if err := copyFile(name, path); err != nil {
			return seedReport{}, time.Time{}, err
		}
		// The copy is synced (copyFile): gigabytes of its pages would
		// otherwise reach the disk during the first timed run, and every
		// fsync of the server's would wait behind them.
		schema, err := migrate(ctx, path)
		if err != nil {
			return seedReport{}, time.Time{}, err
		}
		fmt.Fprintf(progress, "[seed] copied %s (seeded %s, schema %s; now %s) in %.1fs\n", name,
			meta.SeededAt.Format(time.RFC3339), cmp.Or(meta.Report.Schema, "not recorded"), schema, time.Since(start).Seconds())
		meta.Report.Cached, meta.Report.MigratedTo = true, schema
		return meta.Report, meta.SeededAt, nil
	}
	rep, err := seed(ctx, path, plan, progress)
	if err != nil {
		return rep, plan.now, err
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return rep, plan.now, err
	}
	// Both files synced, so that the run that seeds does not pay for their
	// writeback during its timed runs either.
	if err := syncFile(path); err != nil {
		return rep, plan.now, err
	}
	if err := copyFile(path, name); err != nil {
		return rep, plan.now, err
	}
	data, err := json.Marshal(cachedSeed{SeededAt: plan.now, Report: rep})
	if err != nil {
		return rep, plan.now, err
	}
	return rep, plan.now, os.WriteFile(name+".json", data, 0o644) // written last: it marks the copy complete
}

// migrate brings a copied database to this checkout's schema and names
// it. A copy already past it is refused: a cache seeded by a newer
// checkout's tool holds migrations this checkout's binaries do not know
// (bench/sidebyside.sh runs the base's tool), and a binary measured on
// such a copy would run on a schema that is not its own.
func migrate(ctx context.Context, path string) (string, error) {
	conn, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return "", err
	}
	defer conn.Close()
	schema, err := schemaOf(ctx, conn)
	if err != nil {
		return "", err
	}
	if last := store.LastMigration(); schema > last {
		return "", fmt.Errorf("the cached seed is at schema %s, past this checkout's %s: seed a cache of this checkout's own", schema, last)
	}
	db, err := store.Open(ctx, path)
	if err != nil {
		return "", err
	}
	return store.LastMigration(), db.Close()
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// copyFile copies from to to, one 4 KiB database page per write, and syncs
// the copy. The server should find the copy's pages cached the way SQLite
// leaves pages it writes itself, one small page-cache folio each. A bulk
// copy (io.Copy is copy_file_range) leaves large folios on a kernel that
// has them (6.18 here), and then each page a checkpoint writes dirties a
// whole folio: a random 4 KiB write into such a file cost 38 µs instead of
// 2.6 µs, and the server's writes reached the disk 1.9 times over (its
// write_bytes against wchar) instead of once.
func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if err := copyInPages(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyPage is the size of each write copyFile makes: the database's page.
const copyPage = 4096

func copyInPages(out io.Writer, in io.Reader) error {
	buf := make([]byte, 256*copyPage)
	for {
		n, err := io.ReadFull(in, buf)
		for off := 0; off < n; off += copyPage {
			if _, werr := out.Write(buf[off:min(off+copyPage, n)]); werr != nil {
				return werr
			}
		}
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil
		case err != nil:
			return err
		}
	}
}
