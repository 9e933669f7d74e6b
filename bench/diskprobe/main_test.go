package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRunPrintsEveryMeasure(t *testing.T) {
	file := filepath.Join(t.TempDir(), "probe.db")
	var out bytes.Buffer
	require.NoError(t, run(options{file: file, sizeMiB: 1, rounds: 2, commits: 3, commitPages: 2}, []int{4, 8}, &out))

	st, err := os.Stat(file)
	require.NoError(t, err)
	require.Equal(t, int64(1<<20), st.Size(), "the file is grown to its size")
	_, err = os.Stat(file + "-probe-wal")
	require.True(t, os.IsNotExist(err), "the probe's WAL is removed")
	require.Regexp(t, regexp.MustCompile(`(?m)^checkpoint of 4 random pages: .* µs a page
checkpoint of 8 random pages: .* µs a page
commit of 2 pages alone: p50 .* p99 .*
commit of 2 pages beside checkpoints: .* \(\d+ checkpoints of 1000 pages in .*\)
$`), out.String())
}

func TestEnsureFileKeepsWhatIsThere(t *testing.T) {
	file := filepath.Join(t.TempDir(), "probe.db")
	require.NoError(t, os.WriteFile(file, bytes.Repeat([]byte{7}, 3*page), 0o600))
	f, err := ensureFile(file, 5*page)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	got, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Len(t, got, 5*page)
	require.Equal(t, bytes.Repeat([]byte{7}, 3*page), got[:3*page])
}

func TestPercentile(t *testing.T) {
	d := []time.Duration{5, 1, 4, 2, 3}
	require.Equal(t, time.Duration(1), pct(d, 0))
	require.Equal(t, time.Duration(3), pct(d, .5))
	require.Equal(t, time.Duration(5), pct(d, 1))
	require.Equal(t, []time.Duration{5, 1, 4, 2, 3}, d, "the input is left in its order")
}
