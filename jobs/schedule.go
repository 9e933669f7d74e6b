package jobs

import (
	"errors"
	"time"

	"github.com/robfig/cron/v3"
)

// ParseSchedule parses a standard 5-field cron spec or a descriptor such as
// @daily or @hourly, in loc unless the spec starts with CRON_TZ=. @every
// is refused: it has no fixed slots, so a missed run could not be named.
func ParseSchedule(spec string, loc *time.Location) (Schedule, error) {
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, err
	}
	spec5, ok := s.(*cron.SpecSchedule)
	if !ok {
		return nil, errors.New("@every has no fixed times; want a cron spec such as */5 * * * * or @daily")
	}
	if spec5.Location == time.Local { // no CRON_TZ= prefix
		spec5.Location = loc
	}
	if spec5.Next(time.Now()).IsZero() {
		return nil, errors.New("it never fires")
	}
	return gapSchedule{spec5}, nil
}

// gapSchedule is a cron spec that also fires for a time its zone's clocks
// skip, at the instant they jump, as Vixie cron does for a job at fixed
// hours. robfig/cron walks the wall clock and finds no such time, so the
// daily reset's 0 0 * * * never ran on a day whose midnight is skipped
// (Santiago, Havana, Beirut: the allowance day then starts at 01:00).
// Unlike Vixie cron, a time the clocks pass twice fires twice, as robfig
// has it; every job here takes a second run in its stride.
type gapSchedule struct{ spec *cron.SpecSchedule }

// searchYears is how far ahead Next looks for a skipped time when the spec
// itself has none: robfig gives up after five years, and a spec such as
// 0 0 29 2 * in a zone with daylight saving would otherwise walk its
// jumps for ever.
const searchYears = 5

func (g gapSchedule) Next(t time.Time) time.Time {
	next := g.wallNext(t)
	until := next
	if until.IsZero() {
		until = t.AddDate(searchYears, 0, 0)
	}
	loc := g.spec.Location
	for jump := zoneEnd(t.In(loc)); !jump.IsZero() && jump.Before(until); jump = zoneEnd(jump) {
		if g.firesIn(skipped(jump, loc)) {
			return jump
		}
	}
	return next
}

// wallNext is the spec's next time after t on its zone's wall clock, one
// zone period (a stretch of one offset) at a time: within one, the wall
// clock and the instant differ by the offset alone. robfig/cron steps the
// instant an hour at a time instead, and after a change of offset that is
// not whole hours (Australia/Lord_Howe's 30 minutes) its hours fall at :30
// on the wall, and it passed a whole day's 0 0 * * *. A wall time the
// clocks skip is in no period, and one they pass twice is in two, so it
// fires twice: robfig's rules, to which Next adds the jump.
func (g gapSchedule) wallNext(t time.Time) time.Time {
	onWall := *g.spec
	onWall.Location = time.UTC
	loc := g.spec.Location
	after := t // the first period's times must be after t; a later one's at or after its start
	deadline := t.AddDate(searchYears, 0, 0)
	for from := t; from.Before(deadline); {
		in := from.In(loc)
		_, offset := in.Zone()
		_, end := in.ZoneBounds()
		shift := time.Duration(offset) * time.Second
		wall := onWall.Next(after.Add(shift).UTC())
		if wall.IsZero() {
			return time.Time{}
		}
		if at := wall.Add(-shift); end.IsZero() || at.Before(end) {
			return at.In(loc)
		}
		from, after = end, end.Add(-time.Nanosecond)
	}
	return time.Time{}
}

// zoneEnd is when the zone period holding t ends: its zone's next change
// of offset, or zero if it has none.
func zoneEnd(t time.Time) time.Time {
	_, end := t.ZoneBounds()
	return end
}

// skipped is the wall-clock stretch that the change of offset at jump
// skips, as times of the same clock in UTC: [from, to), empty where the
// clocks go back.
func skipped(jump time.Time, loc *time.Location) (from, to time.Time) {
	_, before := jump.Add(-time.Nanosecond).In(loc).Zone()
	_, after := jump.In(loc).Zone()
	wall := jump.Add(time.Duration(before) * time.Second).UTC()
	return wall, wall.Add(time.Duration(after-before) * time.Second)
}

// firesIn says whether the spec, read on a clock that skips nothing, has
// a time in [from, to).
func (g gapSchedule) firesIn(from, to time.Time) bool {
	if !from.Before(to) {
		return false
	}
	wall := *g.spec
	wall.Location = time.UTC
	n := wall.Next(from.Add(-time.Second))
	return !n.IsZero() && n.Before(to)
}

// lookbacks are the windows Prev searches, growing: most schedules find
// their last slot in the first, and a yearly one still finds it.
var lookbacks = []time.Duration{time.Hour, 25 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour,
	5 * 367 * 24 * time.Hour}

// maxSteps bounds the walk through one window.
const maxSteps = 100_000

// Prev is the most recent activation of s at or before now: the slot a run
// at now is for. It is false if s has none in the last five years.
func Prev(s Schedule, now time.Time) (time.Time, bool) {
	for _, back := range lookbacks {
		var last time.Time
		t := now.Add(-back)
		for range maxSteps {
			next := s.Next(t)
			if next.IsZero() || next.After(now) {
				break
			}
			last, t = next, next
		}
		if !last.IsZero() {
			return last, true
		}
	}
	return time.Time{}, false
}
