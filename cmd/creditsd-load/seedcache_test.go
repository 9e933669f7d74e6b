package main

import (
	"context"
	"io"
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
