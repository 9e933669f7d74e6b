package main

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestServeRefusesWithoutItsJobs: jobs that cannot be scheduled stop serve
// at its start, instead of a server that answers while no lot is swept and
// no consumption request answered. (The config's own check catches this
// first; here the app is past it, as a bug would leave it.)
func TestServeRefusesWithoutItsJobs(t *testing.T) {
	ca := newCA(t)
	_, config := writeConfig(t, ca, "")
	a, err := openApp(context.Background(), config, func(string) string { return "" }, io.Discard)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, a.close()) })
	a.settings.Config.Listen = "127.0.0.1:0"
	a.settings.Config.Jobs.Timezone = "Nowhere/Atlantis"
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // were it to serve, it would stop at once and answer nil
	err = a.serve(ctx)
	require.ErrorContains(t, err, "jobs.timezone")
}
