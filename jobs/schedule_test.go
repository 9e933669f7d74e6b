package jobs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func mustSchedule(t testing.TB, spec string, loc *time.Location) Schedule {
	t.Helper()
	s, err := ParseSchedule(spec, loc)
	require.NoError(t, err)
	return s
}

func TestParseSchedule(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	t.Run("OK: read in the given zone", func(t *testing.T) {
		s := mustSchedule(t, "0 0 * * *", paris)
		next := s.Next(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
		require.True(t, next.Equal(time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC)), "midnight in Paris is 23:00 UTC in winter: %v", next)
	})
	t.Run("OK: CRON_TZ picks its own zone", func(t *testing.T) {
		s := mustSchedule(t, "CRON_TZ=UTC 0 0 * * *", paris)
		next := s.Next(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
		require.True(t, next.Equal(time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)))
	})
	t.Run("OK: descriptors", func(t *testing.T) {
		mustSchedule(t, "@daily", time.UTC)
		mustSchedule(t, "@hourly", time.UTC)
	})
	for _, bad := range []string{"", "* * *", "61 * * * *", "@every 5m", "0 0 30 2 *", "@fortnightly"} {
		t.Run("Err: "+bad, func(t *testing.T) {
			_, err := ParseSchedule(bad, time.UTC)
			require.Error(t, err)
		})
	}
}

func TestPrev(t *testing.T) {
	now := time.Date(2026, 11, 25, 3, 14, 59, 0, time.UTC)
	for _, tc := range []struct {
		spec string
		want time.Time
	}{
		{"*/5 * * * *", time.Date(2026, 11, 25, 3, 10, 0, 0, time.UTC)},
		{"0 * * * *", time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)},
		{"15 3 * * *", time.Date(2026, 11, 24, 3, 15, 0, 0, time.UTC)},
		{"14 3 * * *", time.Date(2026, 11, 25, 3, 14, 0, 0, time.UTC)},
		{"0 9 * * 1-5", time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)}, // a Wednesday: Tuesday's
		{"0 0 1 1 *", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"0 0 29 2 *", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			got, ok := Prev(mustSchedule(t, tc.spec, time.UTC), now)
			require.True(t, ok)
			require.True(t, tc.want.Equal(got), "got %v", got)
		})
	}
	t.Run("a slot exactly now is now's", func(t *testing.T) {
		at := time.Date(2026, 11, 25, 3, 15, 0, 0, time.UTC)
		got, _ := Prev(mustSchedule(t, "15 3 * * *", time.UTC), at)
		require.True(t, at.Equal(got))
	})
}

// A time the zone's clocks skip fires at the instant they jump; robfig
// finds no such time, so 0 0 * * * skipped the day whose midnight is
// skipped (the daily reset, read in the allowance's zone). Where the
// clocks go back, and on other days, the spec fires as robfig says.
func TestScheduleFiresForASkippedTime(t *testing.T) {
	santiago, err := time.LoadLocation("America/Santiago") // 2026-09-06 00:00 → 01:00
	require.NoError(t, err)
	ny, err := time.LoadLocation("America/New_York") // 2026-03-08 02:00 → 03:00, 2026-11-01 02:00 → 01:00
	require.NoError(t, err)
	for _, tc := range []struct {
		spec  string
		loc   *time.Location
		from  time.Time
		wants []string // the activations after from, in loc
	}{
		{"0 0 * * *", santiago, time.Date(2026, 9, 4, 12, 0, 0, 0, santiago),
			[]string{"2026-09-05 00:00 -04", "2026-09-06 01:00 -03", "2026-09-07 00:00 -03"}},
		{"30 2 * * *", ny, time.Date(2026, 3, 7, 12, 0, 0, 0, ny),
			[]string{"2026-03-08 03:00 EDT", "2026-03-09 02:30 EDT"}},
		{"0 * * * *", ny, time.Date(2026, 3, 8, 0, 30, 0, 0, ny),
			[]string{"2026-03-08 01:00 EST", "2026-03-08 03:00 EDT", "2026-03-08 04:00 EDT"}},
		{"30 2 * * *", ny, time.Date(2026, 10, 31, 12, 0, 0, 0, ny),
			[]string{"2026-11-01 02:30 EST", "2026-11-02 02:30 EST"}},
		{"0 3 * * *", ny, time.Date(2026, 3, 7, 12, 0, 0, 0, ny), // not in the gap
			[]string{"2026-03-08 03:00 EDT", "2026-03-09 03:00 EDT"}},
	} {
		t.Run(tc.spec+" "+tc.loc.String(), func(t *testing.T) {
			s := mustSchedule(t, tc.spec, tc.loc)
			var got []string
			for at := tc.from; len(got) < len(tc.wants); {
				at = s.Next(at)
				got = append(got, at.In(tc.loc).Format("2006-01-02 15:04 MST"))
			}
			require.Equal(t, tc.wants, got)
		})
	}
	t.Run("Prev names the jump's slot", func(t *testing.T) {
		s := mustSchedule(t, "0 0 * * *", santiago)
		got, ok := Prev(s, time.Date(2026, 9, 6, 1, 0, 30, 0, santiago))
		require.True(t, ok)
		require.Equal(t, "2026-09-06 01:00 -03", got.In(santiago).Format("2006-01-02 15:04 MST"))
	})
}

// A spec with no time left in robfig's five years, in a zone with daylight
// saving, ends: the search for a skipped time walked the zone's jumps for
// ever.
func TestScheduleWithNoTimeLeftEnds(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	s := mustSchedule(t, "0 0 29 2 *", ny)
	done := make(chan time.Time)
	go func() { done <- s.Next(time.Date(2097, 3, 1, 0, 0, 0, 0, ny)) }() // no 29 Feb until 2104
	select {
	case next := <-done:
		require.True(t, next.IsZero(), "%v", next)
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not return")
	}
}

// Next against the wall clock minute by minute, around every change of
// offset of 2026 in zones that skip midnight (Santiago, Havana), shift by
// half an hour (Lord_Howe: robfig stepped its hours from :30 and passed a
// whole day), by 45 minutes' offsets (Chatham) or not at all (Kolkata): a
// minute fires when its wall time matches the spec, or when the clocks
// jump to it over a time that matches.
func TestScheduleFollowsTheWallClock(t *testing.T) {
	specs := []string{"0 0 * * *", "15 3 * * *", "30 1 * * *", "0 * * * *", "*/20 * * * *", "45 2 * * 0"}
	for _, zone := range []string{"Australia/Lord_Howe", "America/New_York", "America/Santiago", "America/Havana",
		"Pacific/Chatham", "Asia/Kolkata"} {
		loc, err := time.LoadLocation(zone)
		require.NoError(t, err)
		for _, jump := range offsetChanges(loc, 2026) {
			from, to := jump.Add(-50*time.Hour), jump.Add(50*time.Hour)
			for _, spec := range specs {
				s := mustSchedule(t, spec, loc)
				want := wallFires(t, spec, loc, from, to)
				var got []string
				for at := s.Next(from); at.Before(to); at = s.Next(at) {
					got = append(got, at.In(loc).Format(time.RFC3339))
				}
				require.Equal(t, want, got, "%s in %s around %v", spec, zone, jump.In(loc))
			}
		}
	}
}

// offsetChanges are the instants loc's offset changes in year (none for a
// zone without them).
func offsetChanges(loc *time.Location, year int) []time.Time {
	var out []time.Time
	for at := time.Date(year, 1, 1, 0, 0, 0, 0, loc); at.Year() == year; {
		_, end := at.ZoneBounds()
		if end.IsZero() || end.Year() != year {
			break
		}
		out = append(out, end)
		at = end
	}
	return out
}

// wallFires is the brute-force answer: every minute in (from, to) whose wall
// time the spec matches, read on a clock that skips nothing, and every
// instant the clocks jump forward over a wall time it matches.
func wallFires(t *testing.T, spec string, loc *time.Location, from, to time.Time) []string {
	onWall := mustSchedule(t, spec, time.UTC)
	matches := func(wall time.Time) bool { return onWall.Next(wall.Add(-time.Nanosecond)).Equal(wall) }
	wallOf := func(at time.Time) time.Time {
		y, mo, d := at.In(loc).Date()
		h, mi, sec := at.In(loc).Clock()
		return time.Date(y, mo, d, h, mi, sec, 0, time.UTC)
	}
	var out []string
	for at := from.Truncate(time.Minute).Add(time.Minute); at.Before(to); at = at.Add(time.Minute) {
		fires := matches(wallOf(at))
		before, after := wallOf(at.Add(-time.Minute)).Add(time.Minute), wallOf(at)
		for w := before; !fires && w.Before(after); w = w.Add(time.Minute) {
			fires = matches(w) // the clocks jumped from before to after at this instant
		}
		if fires {
			out = append(out, at.In(loc).Format(time.RFC3339))
		}
	}
	return out
}
