package main

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSeedCached(t *testing.T) {
	ctx := context.Background()
	cache, dir := t.TempDir(), t.TempDir()
	first := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	plan := seedPlan{users: 5, lots: 40, expired: 7, credits: 100, now: first}

	rep, at, err := seedCached(ctx, cache, filepath.Join(dir, "a.db"), plan, io.Discard)
	require.NoError(t, err)
	require.False(t, rep.Cached, "the first run seeds")
	require.True(t, at.Equal(first))

	plan.now = time.Now()
	rep, at, err = seedCached(ctx, cache, filepath.Join(dir, "b.db"), plan, io.Discard)
	require.NoError(t, err)
	require.True(t, rep.Cached, "the second run copies")
	require.True(t, at.Equal(first), "a copy's lots expired relative to the original seeding")
	c, err := checkSweep(ctx, filepath.Join(dir, "b.db"), at)
	require.NoError(t, err)
	require.Equal(t, int64(7), c.Left, "the copy holds the seeded expired lots")

	plan.expired = 8
	rep, _, err = seedCached(ctx, cache, filepath.Join(dir, "c.db"), plan, io.Discard)
	require.NoError(t, err)
	require.False(t, rep.Cached, "another plan seeds afresh")
}

// The report names the schema a seed was made with and the one a copy was
// migrated to, which differ when the cache is older than the checkout.
func TestSeedCachedNamesItsSchema(t *testing.T) {
	ctx := context.Background()
	cache, dir := t.TempDir(), t.TempDir()
	plan := seedPlan{users: 3, lots: 9, expired: 1, credits: 100, now: time.Now()}
	made, _, err := seedCached(ctx, cache, filepath.Join(dir, "a.db"), plan, io.Discard)
	require.NoError(t, err)
	require.Regexp(t, `^\d{4}_\w+$`, made.Schema)
	require.Equal(t, "schema "+made.Schema, made.schemaText())

	copied, _, err := seedCached(ctx, cache, filepath.Join(dir, "b.db"), plan, io.Discard)
	require.NoError(t, err)
	require.Equal(t, made.Schema, copied.MigratedTo)
	require.Equal(t, "copied, schema "+made.Schema, copied.schemaText())

	// A cache seeded by a newer checkout is refused: its copy would hold
	// migrations this checkout's binaries do not know.
	name := filepath.Join(cache, "seed-u3-l9-e1-togetherfalse.db")
	future, err := sql.Open("sqlite", name)
	require.NoError(t, err)
	_, err = future.Exec(`INSERT INTO schema_migrations (name) VALUES ('migrations/9999_future.sql')`)
	require.NoError(t, err)
	require.NoError(t, future.Close())
	_, _, err = seedCached(ctx, cache, filepath.Join(dir, "d.db"), plan, io.Discard)
	require.ErrorContains(t, err, "the cached seed is at schema 9999_future, past this checkout's "+made.Schema)
	future, err = sql.Open("sqlite", name)
	require.NoError(t, err)
	_, err = future.Exec(`DELETE FROM schema_migrations WHERE name = 'migrations/9999_future.sql'`)
	require.NoError(t, err)
	require.NoError(t, future.Close())

	// A cache seeded by an older checkout, or by a tool that did not
	// record the schema.
	for _, old := range []string{"0013_unread_indexes", ""} {
		data, err := os.ReadFile(name + ".json")
		require.NoError(t, err)
		var meta cachedSeed
		require.NoError(t, json.Unmarshal(data, &meta))
		meta.Report.Schema = old
		data, err = json.Marshal(meta)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(name+".json", data, 0o644))
		var progress bytes.Buffer
		copied, _, err = seedCached(ctx, cache, filepath.Join(dir, "c.db"), plan, &progress)
		require.NoError(t, err)
		require.Equal(t, made.Schema, copied.MigratedTo)
		want := "copied, schema " + cmp.Or(old, "not recorded") + ", migrated to " + made.Schema
		require.Equal(t, want, copied.schemaText())
		require.Contains(t, progress.String(), "schema "+cmp.Or(old, "not recorded")+"; now "+made.Schema)
	}
}

// pageWrites records the size of every write.
type pageWrites struct {
	bytes.Buffer
	sizes []int
}

func (w *pageWrites) Write(p []byte) (int, error) {
	w.sizes = append(w.sizes, len(p))
	return w.Buffer.Write(p)
}

func TestCopyInPages(t *testing.T) {
	for _, size := range []int{0, 100, copyPage, 300*copyPage + 17} {
		in := make([]byte, size)
		for i := range in {
			in[i] = byte(i * 7)
		}
		var out pageWrites
		require.NoError(t, copyInPages(&out, bytes.NewReader(in)))
		require.Equal(t, size, out.Len(), "size %d", size)
		require.True(t, bytes.Equal(in, out.Bytes()), "size %d: the copy differs", size)
		for i, n := range out.sizes {
			if i < len(out.sizes)-1 {
				require.Equal(t, copyPage, n, "every write but the last is one page")
			}
			require.LessOrEqual(t, n, copyPage)
		}
	}
}
