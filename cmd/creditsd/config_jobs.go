package main

import (
	"time"

	"github.com/creditsd/creditsd/jobs"
	"github.com/creditsd/creditsd/receipts/serverapi"
)

// JobsConfig schedules the background jobs. Every key is optional:
//
//	jobs:
//	  timezone: UTC                 # IANA zone the schedules are read in
//	  expiry_sweep:        {schedule: "15 3 * * *", enabled: true}
//	  daily_reset:         {schedule: "0 0 * * *", enabled: true, keep_days: 35, keep_runs_days: 90}
//	  reconcile:           {schedule: "0 * * * *", enabled: true}
//	  consumption_answers: {schedule: "*/5 * * * *", enabled: true}
//
// daily_reset's schedule is read in allowance.timezone instead: its
// midnight is the allowance day's boundary. A schedule may start with
// CRON_TZ=Zone/Name to pick its own zone.
type JobsConfig struct {
	Timezone           string                   `yaml:"timezone"`
	ExpirySweep        JobConfig                `yaml:"expiry_sweep"`
	DailyReset         DailyResetConfig         `yaml:"daily_reset"`
	Reconcile          ReconcileConfig          `yaml:"reconcile"`
	ConsumptionAnswers ConsumptionAnswersConfig `yaml:"consumption_answers"`
}

// ReconcileConfig adds what history each reconcile run asks Apple for.
type ReconcileConfig struct {
	JobConfig    `yaml:",inline"`
	Window       string `yaml:"window"`        // how far back a run looks at least; default 72h, at most 4319h (Sandbox: 719h)
	OnlyFailures *bool  `yaml:"only_failures"` // only what Apple failed to deliver; default true
}

// ConsumptionAnswersConfig adds what creditsd tells Apple besides the ledger's facts.
type ConsumptionAnswersConfig struct {
	JobConfig             `yaml:",inline"`
	CustomerConsented     *bool  `yaml:"customer_consented"`      // default false: only the operator can say the terms obtain consent
	SampleContentProvided *bool  `yaml:"sample_content_provided"` // default true: the daily allowance is a free sample
	RefundPreference      string `yaml:"refund_preference"`       // auto (default), decline, grant_full, grant_prorated, none
}

// JobConfig is one job's schedule.
type JobConfig struct {
	Schedule string `yaml:"schedule"` // a 5-field cron spec or @daily, @hourly…; empty: the job's default
	Enabled  *bool  `yaml:"enabled"`  // default true; a disabled job still runs with `jobs run`
}

// DailyResetConfig adds how many past days of allowance counters, and of
// job runs, to keep.
type DailyResetConfig struct {
	JobConfig    `yaml:",inline"`
	KeepDays     *int `yaml:"keep_days"`      // default 35
	KeepRunsDays *int `yaml:"keep_runs_days"` // default 90
}

// jobPlan is a job's resolved schedule, before it is given its work.
type jobPlan struct {
	name     string
	schedule jobs.Schedule
	enabled  bool
}

// jobsSettings is the jobs section resolved.
type jobsSettings struct {
	plans        []jobPlan
	keepDays     int
	keepRunsDays int
	reconcile    jobs.ReconcileOptions // Environments are filled in by the wiring
	consumption  jobs.ConsumptionPolicy
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
		{jobs.ReconcileName, "reconcile", "0 * * * *", j.Reconcile.JobConfig, loc},
		{jobs.ConsumptionAnswersName, "consumption_answers", "*/5 * * * *", j.ConsumptionAnswers.JobConfig, loc},
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
	if s.keepDays, err = days("keep_days", j.DailyReset.KeepDays, jobs.DefaultKeepDays); err != nil {
		return s, err
	}
	if s.keepRunsDays, err = days("keep_runs_days", j.DailyReset.KeepRunsDays, jobs.DefaultKeepRunsDays); err != nil {
		return s, err
	}
	if s.reconcile, err = j.Reconcile.options(); err != nil {
		return s, err
	}
	s.consumption, err = j.ConsumptionAnswers.policy()
	return s, err
}

// days is a count of days under jobs.daily_reset, 1 to 3660, or def.
func days(key string, v *int, def int) (int, error) {
	switch {
	case v == nil:
		return def, nil
	case *v < 1 || *v > 3660:
		return 0, keyErrorf("jobs.daily_reset."+key, "%d: want from 1 to 3660 days", *v)
	}
	return *v, nil
}

func (r ReconcileConfig) options() (jobs.ReconcileOptions, error) {
	o := jobs.ReconcileOptions{Window: 72 * time.Hour, OnlyFailures: r.OnlyFailures == nil || *r.OnlyFailures}
	if r.Window != "" {
		w, err := time.ParseDuration(r.Window)
		if err != nil || w < time.Hour || w > jobs.MaxWindow {
			return o, keyErrorf("jobs.reconcile.window", "%q: want a duration from 1h to %dh: Apple keeps 180 days of "+
				"Production history and refuses an older start, and a run starts an hour inside that (Sandbox keeps "+
				"30 days: its requests start at most %dh back, whatever the window)", r.Window,
				int(jobs.MaxWindow.Hours()), int((serverapi.SandboxHistoryRetention - jobs.RetentionMargin).Hours()))
		}
		o.Window = w
	}
	return o, nil
}

func (c ConsumptionAnswersConfig) policy() (jobs.ConsumptionPolicy, error) {
	p := jobs.ConsumptionPolicy{CustomerConsented: c.CustomerConsented != nil && *c.CustomerConsented,
		SampleContentProvided: c.SampleContentProvided == nil || *c.SampleContentProvided, RefundPreference: c.RefundPreference}
	switch c.RefundPreference {
	case "":
		p.RefundPreference = jobs.PreferAuto
	case jobs.PreferAuto, jobs.PreferDecline, jobs.PreferGrantFull, jobs.PreferGrantProrated, jobs.PreferNone:
	default:
		return p, keyErrorf("jobs.consumption_answers.refund_preference", "%q: want auto, decline, grant_full, grant_prorated or none", c.RefundPreference)
	}
	return p, nil
}
