package entitlements

import (
	"encoding/json"
	"math"
	"math/big"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSecondsJSON(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Seconds
	}{
		{"10", 10000}, {"7.5", 7500}, {"0.001", 1}, {"-1.5", -1500}, {"0", 0}, {"-0", 0}, {"7.5000", 7500},
		{"1e1", 10000}, {"1E+1", 10000}, {"1e3", 1_000_000}, {"1e-3", 1}, {"0.5e1", 5000},
		{"1.000e+0000000000000000000000001", 10000},
		{"1.0001", 1001}, {"10.000000000000002", 10001}, {"0.0000001", 1}, {"1e-400", 1}, // rounded up
		{"-0.0001", 0}, {"-1.0009", -1000}, // up is toward +∞
		{"9223372036854775.807", math.MaxInt64},
		{"9223372036854775.8071", math.MaxInt64}, // past int64: the longest Seconds
		{"9223372036854775807", math.MaxInt64},   // ×1000 would wrap
		{"-2305843009213693951", math.MinInt64},  // ×1000 would wrap to 1,000 ms: a 1 s generation, charged
		{"1e400", math.MaxInt64}, {"-1e400", math.MinInt64}, {"1e99999999999", math.MaxInt64},
		{"1e-99999999999", 1}, {"-1e-99999999999", 0},
	} {
		var s Seconds
		require.NoError(t, json.Unmarshal([]byte(c.in), &s), c.in)
		require.Equal(t, c.want, s, c.in)
	}
	for _, bad := range []string{`"10"`, "true", "null", "{}", "[1]", "", "-", "01", "1.", ".5", "+1", "1e", "1e+",
		"1.5.5", "0x10", "1e5x", "--1", "1_000", "Infinity", "NaN", " 1"} {
		var s Seconds
		require.Error(t, s.UnmarshalJSON([]byte(bad)), bad)
	}
	out, err := json.Marshal(Seconds(7500))
	require.NoError(t, err)
	require.Equal(t, "7.5", string(out))
}

// jsonNumber is RFC 8259's number.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// FuzzSeconds holds the reader to the grammar of a JSON number and, for
// numbers whose exponent big.Rat can expand cheaply, to the exact length
// rounded up to the millisecond, at int64's limits past them.
func FuzzSeconds(f *testing.F) {
	for _, s := range []string{"10", "7.5", "1e1", "10.000000000000002", "-1.0009", "0.0001", "1e-400", "1e400",
		"9223372036854775.8071", "-2305843009213693951", "18446744073709551.617", "0e0", "-0.0", "1E+01", "01", ".5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var s Seconds
		err := s.UnmarshalJSON([]byte(in))
		if !jsonNumber.MatchString(in) {
			require.Error(t, err)
			return
		}
		require.NoError(t, err)
		if _, exp, _ := strings.Cut(strings.ToLower(in), "e"); len(strings.TrimLeft(exp, "+-0")) > 3 || len(in) > 200 {
			return // big.Rat would expand a large power of ten
		}
		require.Equal(t, ceilMillis(t, in), s, in)
	})
}

// ceilMillis is in seconds in milliseconds, rounded toward +∞ and clamped
// to int64, by big.Rat.
func ceilMillis(t *testing.T, in string) Seconds {
	r, ok := new(big.Rat).SetString(in)
	require.True(t, ok, in)
	num := new(big.Int).Mul(r.Num(), big.NewInt(1000))
	ms := new(big.Int).Neg(new(big.Int).Div(num.Neg(num), r.Denom())) // ceil(a/b) = -floor(-a/b)
	switch {
	case ms.Cmp(big.NewInt(math.MaxInt64)) > 0:
		return math.MaxInt64
	case ms.Cmp(big.NewInt(math.MinInt64)) < 0:
		return math.MinInt64
	}
	return Seconds(ms.Int64())
}
