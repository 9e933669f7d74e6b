package main

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/jobs"
)

// The jobs `creditsd jobs run` knows are the jobs configured, and each has
// its work: the three lists name the same jobs.
func TestJobListsAgree(t *testing.T) {
	_, config := writeConfig(t, newCA(t), "")
	a, err := openApp(context.Background(), config, func(string) string { return "" }, io.Discard)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, a.close()) })
	for _, standalone := range []bool{true, false} {
		set, err := a.jobSet(standalone)
		require.NoError(t, err)
		var names []string
		for _, j := range set {
			names = append(names, j.Name)
			require.NotNil(t, j.Run, "job %s has no work", j.Name)
		}
		require.ElementsMatch(t, jobNames, names)
	}
}

// A name the set lacks, or a job without work, is an error, not a panic.
func TestPickJob(t *testing.T) {
	run := func(context.Context, time.Time) (jobs.Result, error) { return nil, nil }
	set := []jobs.Job{{Name: "a", Run: run}, {Name: "b"}}
	j, err := pickJob(set, "a")
	require.NoError(t, err)
	require.Equal(t, "a", j.Name)
	_, err = pickJob(set, "b")
	require.EqualError(t, err, `job "b" has no configuration or no work in this binary: its job lists disagree`)
	_, err = pickJob(set, "c")
	require.EqualError(t, err, `job "c" has no configuration or no work in this binary: its job lists disagree`)
}
