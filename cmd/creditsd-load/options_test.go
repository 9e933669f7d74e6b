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
