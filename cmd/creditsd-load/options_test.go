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
