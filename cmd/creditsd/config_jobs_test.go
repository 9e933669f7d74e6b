package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// jobs.reconcile.only_failures defaults to true, as the README says, and
// can be turned off.
func TestReconcileOnlyFailuresKey(t *testing.T) {
	onlyFailures := func(jobsYAML string) bool {
		_, config := writeConfig(t, newCA(t), jobsYAML)
		cfg, err := LoadConfig(config, nil)
		require.NoError(t, err)
		js, err := cfg.Jobs.resolve(time.UTC)
		require.NoError(t, err)
		return js.reconcile.OnlyFailures
	}
	require.True(t, onlyFailures(""), "the default is true (README)")
	require.False(t, onlyFailures("jobs:\n  reconcile: {only_failures: false}\n"))
	require.True(t, onlyFailures("jobs:\n  reconcile: {only_failures: true}\n"))
}
