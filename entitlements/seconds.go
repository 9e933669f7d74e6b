package entitlements

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Seconds is a length in whole milliseconds, read from any JSON number of
// seconds (10, 7.5, 1e1, 10.000000000000002) exactly, never through a
// float, and rounded up to the next millisecond so that the service never
// undercharges. Rounding up to the millisecond first prices a generation
// as rounding up its exact length would: a unit is whole milliseconds. A
// length past what int64 milliseconds hold reads as the longest (negative:
// the shortest) Seconds, which no rate accepts (invalid_seconds).
type Seconds int64

// UnmarshalJSON reads a JSON number of seconds.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	d, ok := parseDecimal(string(b))
	if !ok {
		return fmt.Errorf("seconds %.40s: want a number", b)
	}
	*s = d.ceilMillis()
	return nil
}

// MarshalJSON writes seconds back as a decimal.
func (s Seconds) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(s)/1000, 'f', -1, 64)), nil
}

// decimal is a number, digits × 10^exp, negative if neg. digits has no
// leading or trailing zeros; it is "" for zero.
type decimal struct {
	neg    bool
	digits string
	exp    int
}

// maxExponent bounds the exponent a decimal keeps. 10^±maxExponent seconds
// is far past any length, or below a millisecond, so clamping changes no
// answer, and a body cannot make the parser count to 10^18.
const maxExponent = 1 << 20

// parseDecimal reads a JSON number (RFC 8259's grammar).
func parseDecimal(s string) (decimal, bool) {
	var d decimal
	if strings.HasPrefix(s, "-") {
		d.neg, s = true, s[1:]
	}
	whole, s := leadingDigits(s)
	if whole == "" || (len(whole) > 1 && whole[0] == '0') {
		return d, false
	}
	var frac string
	if strings.HasPrefix(s, ".") {
		if frac, s = leadingDigits(s[1:]); frac == "" {
			return d, false
		}
	}
	exp, ok := 0, true
	if strings.HasPrefix(s, "e") || strings.HasPrefix(s, "E") {
		exp, ok = parseExponent(s[1:])
		s = ""
	}
	if !ok || s != "" {
		return d, false
	}
	digits := strings.TrimLeft(whole+frac, "0")
	d.digits = strings.TrimRight(digits, "0")
	d.exp = exp - len(frac) + len(digits) - len(d.digits)
	return d, true
}

// parseExponent reads an exponent's optional sign and digits, clamped to
// ±maxExponent.
func parseExponent(s string) (int, bool) {
	sign := 1
	if strings.HasPrefix(s, "+") || strings.HasPrefix(s, "-") {
		if s[0] == '-' {
			sign = -1
		}
		s = s[1:]
	}
	digits, rest := leadingDigits(s)
	if digits == "" || rest != "" {
		return 0, false
	}
	if digits = strings.TrimLeft(digits, "0"); len(digits) > 7 {
		return sign * maxExponent, true
	}
	n, _ := strconv.Atoi("0" + digits) // at most 7 digits
	return sign * min(n, maxExponent), true
}

func leadingDigits(s string) (digits, rest string) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i], s[i:]
}

// ceilMillis is d seconds in milliseconds, rounded up (toward +∞), or
// the nearest of int64's limits when it is past them.
func (d decimal) ceilMillis() Seconds {
	if d.digits == "" {
		return 0
	}
	k := d.exp + 3 // d in milliseconds is digits × 10^k
	whole, cut := d.digits, false
	switch {
	case k < 0 && -k >= len(whole):
		whole, cut = "0", true
	case k < 0:
		whole, cut = whole[:len(whole)+k], true // what is cut ends in a nonzero digit
	case len(whole)+k > 19:
		return farSeconds(d.neg)
	default:
		whole += strings.Repeat("0", k)
	}
	ms, err := strconv.ParseInt(whole, 10, 64)
	switch {
	case err != nil:
		return farSeconds(d.neg)
	case d.neg:
		return Seconds(-ms) // toward +∞: a negative drops what was cut
	case cut && ms == math.MaxInt64:
		return farSeconds(false)
	case cut:
		ms++
	}
	return Seconds(ms)
}

// farSeconds stands for a length past int64 milliseconds.
func farSeconds(neg bool) Seconds {
	if neg {
		return math.MinInt64
	}
	return math.MaxInt64
}
