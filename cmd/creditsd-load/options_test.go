package main

import (
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOptionsScenarios(t *testing.T) {
	for _, tc := range []struct {
		arg     string
		want    []string
		expired int
		err     string
	}{
		{arg: "all", want: scenarios, expired: 10},
		{arg: "read", want: []string{"read"}},
		{arg: "spend,webhook", want: []string{"spend", "webhook"}},
		{arg: "read,sweep", want: []string{"read", "sweep"}, expired: 10},
		{arg: "healthz,read", want: []string{"healthz", "read"}},
		{arg: "read,nap", err: "comma-separated"},
		{arg: "read,", err: "comma-separated"},
		{arg: "spend,read,spend", err: "spend twice"},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			o, err := parseOptions([]string{"--scenario", tc.arg, "--users", "10"}, io.Discard)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, o.list())
			require.Equal(t, tc.expired, o.expired, "a tenth of the lots expire when the sweep runs")
		})
	}
}

func TestOptionsLayouts(t *testing.T) {
	o, err := parseOptions(nil, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "spread", o.expiredLayout)
	require.Equal(t, "time", o.lotOrder, "lots granted as purchases arrive, by default")
	o, err = parseOptions([]string{"--lot-order", "user", "--expired-layout", "together"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "user", o.lotOrder)
	_, err = parseOptions([]string{"--lot-order", "random"}, io.Discard)
	require.ErrorContains(t, err, "want user or time")
	_, err = parseOptions([]string{"--expired-layout", "clumped"}, io.Discard)
	require.ErrorContains(t, err, "want spread or together")
}

// TestOptionsRefused: each flag out of its range is refused with a message
// that names it, before anything starts.
func TestOptionsRefused(t *testing.T) {
	target := []string{"--target", "http://127.0.0.1:1", "--secret", "s", "--ca-dir", "ca"}
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--target", "http://127.0.0.1:1"}, "--target needs --secret and --ca-dir"},
		{append([]string{"--profile", "p"}, target...), "--profile needs a server the tool starts"},
		{append([]string{"--peer"}, target...), "--peer needs the started server"},
		{[]string{"--users", "0"}, "--users and --runs must be at least 1"},
		{[]string{"--runs", "0"}, "--users and --runs must be at least 1"},
		{[]string{"--concurrency", "-1"}, "not negative"},
		{[]string{"--rate", "-1"}, "not negative"},
		{[]string{"--users", "10", "--lots", "5", "--expired", "6"}, "--expired 6 is more than --lots 5"},
		{[]string{"--sweep-in", "cron"}, `--sweep-in "cron": want server or process`},
		{[]string{"--sweep-beside", "webhook"}, `--sweep-beside "webhook": want spend or read`},
		{[]string{"--lots", "-5"}, "--lots -5, --expired -1: want 0 or more"},
		{[]string{"--expired", "-7"}, "want 0 or more"},
		{[]string{"--scenario", "read", "--peer"}, "add webhook to --scenario"},
		{[]string{"--scenario", "webhook", "--peer", "--peer-count", "-1"}, "--peer-count -1: want at least 1"},
		{[]string{"--scenario", "webhook", "--peer", "--peer-count", "0"}, "want at least 1"},
	} {
		_, err := parseOptions(tc.args, io.Discard)
		require.ErrorContains(t, err, tc.err, tc.args)
	}
	o, err := parseOptions(target, io.Discard)
	require.NoError(t, err, "a target with its secret and CA")
	require.Equal(t, 100_000, o.lots, "ten lots a user by default")
}
