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
	return spec5, nil
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
