package receipts

import (
	"errors"
	"strconv"
	"time"
)

// millis is Apple's date format: an integer count of milliseconds since the
// Unix epoch. Its own UnmarshalJSON refuses what encoding/json's int64
// would let through as a surprise downstream (negative dates) and names
// what it refuses (strings, fractions, exponents) clearly.
type millis int64

func (m *millis) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return errNotMillis
	}
	if n < 0 {
		return errNegativeMillis
	}
	if n > maxMillis {
		return errFarMillis
	}
	*m = millis(n)
	return nil
}

var (
	errNotMillis      = errors.New("date is not an integer count of milliseconds")
	errNegativeMillis = errors.New("date is negative")
	errFarMillis      = errors.New("date is past the year 9999")
)

// maxMillis is 9999-12-31T23:59:59.999Z, the last instant a JSON (RFC 3339)
// time can write: a purchase dated later was recorded, and then every
// answer holding its lot's granted_at failed to marshal, for good. Apple
// signs no such date.
const maxMillis = 253402300799999

// time converts to time.Time in UTC; 0 (absent) becomes the zero Time so
// callers can test IsZero instead of comparing with 1970.
func (m millis) time() time.Time {
	if m == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(m)).UTC()
}

func toMillis(t time.Time) millis {
	if t.IsZero() {
		return 0
	}
	return millis(t.UnixMilli())
}
