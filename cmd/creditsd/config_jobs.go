package main

import (
	"time"

	"github.com/creditsd/creditsd/jobs"
)

// JobsConfig schedules the background jobs. Every key is optional:
//
//	jobs:
//	  timezone: UTC                 # IANA zone the schedules are read in
//	  expiry_sweep:        {schedule: "15 3 * * *", enabled: true}
//	  daily_reset:         {schedule: "0 0 * * *", enabled: true, keep_days: 35}
//	  reconcile:           {schedule: "0 * * * *", enabled: true}
//	  consumption_answers: {schedule: "*/5 * * * *", enabled: true}
//
// daily_reset's schedule is read in allowance.timezone instead: its
// midnight is the allowance day's boundary. A schedule may start with
// CRON_TZ=Zone/Name to pick its own zone.
type JobsConfig struct {
	Timezone           string           `yaml:"timezone"`
	ExpirySweep        JobConfig        `yaml:"expiry_sweep"`
	DailyReset         DailyResetConfig `yaml:"daily_reset"`
	Reconcile          JobConfig        `yaml:"reconcile"`
	ConsumptionAnswers JobConfig        `yaml:"consumption_answers"`
}

// JobConfig is one job's schedule.
type JobConfig struct {
	Schedule string `yaml:"schedule"` // a 5-field cron spec or @daily, @hourly…; empty: the job's default
	Enabled  *bool  `yaml:"enabled"`  // default true; a disabled job still runs with `jobs run`
}

// DailyResetConfig adds how many past days of allowance counters to keep.
type DailyResetConfig struct {
	JobConfig `yaml:",inline"`
	KeepDays  *int `yaml:"keep_days"` // default 35
}

// jobPlan is a job's resolved schedule, before it is given its work.
type jobPlan struct {
	name     string
	schedule jobs.Schedule
	enabled  bool
}

// jobsSettings is the jobs section resolved.
type jobsSettings struct {
	plans    []jobPlan
	keepDays int
}

// check validates the section; the allowance zone is not known yet, and
// does not change whether a schedule parses.
func (j JobsConfig) check() error {
	_, err := j.resolve(time.UTC)
	return err
}

// resolve parses every schedule, the daily reset's in allowanceZone.
func (j JobsConfig) resolve(allowanceZone *time.Location) (jobsSettings, error) {
	var s jobsSettings
	zone := j.Timezone
	if zone == "" {
		zone = "UTC"
	}
	loc, err := time.LoadLocation(zone)
	if err != nil || zone == "Local" {
		return s, keyErrorf("jobs.timezone", "%q: want an IANA zone name such as UTC or Europe/Paris", j.Timezone)
	}
	entries := []struct {
		name, key, spec string
		c               JobConfig
		loc             *time.Location
	}{
		{jobs.ExpirySweepName, "expiry_sweep", "15 3 * * *", j.ExpirySweep, loc},
		{jobs.DailyResetName, "daily_reset", "0 0 * * *", j.DailyReset.JobConfig, allowanceZone},
		{jobs.ReconcileName, "reconcile", "0 * * * *", j.Reconcile, loc},
		{jobs.ConsumptionAnswersName, "consumption_answers", "*/5 * * * *", j.ConsumptionAnswers, loc},
	}
	for _, e := range entries {
		spec := e.c.Schedule
		if spec == "" {
			spec = e.spec
		}
		sched, err := jobs.ParseSchedule(spec, e.loc)
		if err != nil {
			return s, keyErrorf("jobs."+e.key+".schedule", "%q: %w", spec, err)
		}
		s.plans = append(s.plans, jobPlan{name: e.name, schedule: sched, enabled: e.c.Enabled == nil || *e.c.Enabled})
	}
	s.keepDays = jobs.DefaultKeepDays
	if k := j.DailyReset.KeepDays; k != nil {
		if *k < 1 || *k > 3660 {
			return s, keyErrorf("jobs.daily_reset.keep_days", "%d: want from 1 to 3660 days", *k)
		}
		s.keepDays = *k
	}
	return s, nil
}
