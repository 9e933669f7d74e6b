package main

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// A Ctrl-C during a scenario ends the tool with an error, after the
// scenarios that ran whole: it printed the cut one's figures as a whole
// run's, ran the rest on a cancelled context, and exited 0.
func TestRunScenariosStopsWhenInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var ran []string
	scenario := func(_ context.Context, name string) (scenarioResult, error) {
		ran = append(ran, name)
		if name == "spend" {
			cancel() // the Ctrl-C, while spends run
		}
		return scenarioResult{Name: name}, nil
	}
	done, err := runScenarios(ctx, []string{"read", "spend", "webhook"}, scenario)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorContains(t, err, "spend: interrupted")
	require.Equal(t, []scenarioResult{{Name: "read"}}, done)
	require.Equal(t, []string{"read", "spend"}, ran)

	failing := func(_ context.Context, name string) (scenarioResult, error) {
		return scenarioResult{}, errors.New("boom")
	}
	_, err = runScenarios(context.Background(), []string{"read"}, failing)
	require.EqualError(t, err, "read: boom")
}

// With --json -, the JSON alone is on stdout, and the table goes to
// stderr: it was dropped.
func TestJSONToStdoutKeepsTheTable(t *testing.T) {
	var stdout, stderr bytes.Buffer
	r := report{Scenarios: []scenarioResult{{Name: "read"}}}
	require.NoError(t, r.write(&stdout, &stderr, "-"))
	require.Equal(t, byte('{'), stdout.Bytes()[0])
	require.Contains(t, stderr.String(), "p99 ms")
	stdout.Reset()
	stderr.Reset()
	require.NoError(t, r.write(&stdout, &stderr, ""))
	require.Contains(t, stdout.String(), "p99 ms")
	require.Empty(t, stderr.String())
}

// The sweep's notes name the errors of the requests before it as well as
// during it: 2,539 spends refused 402 before a small sweep were not shown.
func TestSweepNotesNameErrorsBeforeIt(t *testing.T) {
	var b bytes.Buffer
	sw := &sweepResult{Beside: "spend", SpendsBefore: &Summary{Errors: map[string]int{"402": 2539}},
		SpendsDuring: &Summary{Errors: map[string]int{"402": 40}}}
	sw.notes(&b)
	require.Contains(t, b.String(), "errors 402×40; before it:")
	require.Contains(t, b.String(), "p99 0.00 ms, errors 402×2539")
}
