package main

import (
	"context"
	"fmt"
	"os"

	"github.com/creditsd/creditsd/jobs"
)

// appStoreAPI names the configuration reconcile and consumption-answers
// need; until it exists they skip.
const appStoreAPI = "app_store_api"

// jobSet is every job with its schedule and its work. A job that needs the
// App Store Server API is registered and skips until that is configured.
// standalone is true for `creditsd jobs run`, which may share the database
// with a live server.
func (a *app) jobSet(standalone bool) ([]jobs.Job, error) {
	js, err := a.settings.Config.Jobs.resolve(a.settings.Allowance.Location)
	if err != nil {
		return nil, err
	}
	work := map[string]jobs.Func{
		jobs.ExpirySweepName:        jobs.ExpirySweep(a.db, jobs.SweepBatch, standalone),
		jobs.DailyResetName:         jobs.DailyReset(a.db, a.settings.Allowance, js.keepDays, js.keepRunsDays),
		jobs.ReconcileName:          jobs.NotConfigured(appStoreAPI),
		jobs.ConsumptionAnswersName: jobs.NotConfigured(appStoreAPI),
	}
	if api := a.settings.AppStore; api != nil {
		js.reconcile.Environments = a.settings.Config.Apple.Environments
		work[jobs.ReconcileName] = jobs.Reconcile(api, a.inbox, a.db, js.reconcile)
		work[jobs.ConsumptionAnswersName] = jobs.ConsumptionAnswers(a.db, api, js.consumption)
	}
	set := make([]jobs.Job, 0, len(js.plans))
	for _, p := range js.plans {
		if work[p.name] == nil {
			return nil, fmt.Errorf("job %s has no work", p.name) // the lists drifted: serve refuses to start
		}
		set = append(set, jobs.Job{Name: p.name, Schedule: p.schedule, Enabled: p.enabled, Run: work[p.name]})
	}
	return set, nil
}

// runner runs jobs for this process against its database.
func (a *app) runner() *jobs.Runner {
	host, _ := os.Hostname()
	return &jobs.Runner{Store: a.db, Holder: fmt.Sprintf("%s:%d", host, os.Getpid()), Log: a.log.With("component", "jobs")}
}

// startJobs starts the job scheduler; the returned function stops it and
// waits for running jobs, which end at their next batch. The jobs were
// validated with the config, so an error here is a bug; serving without
// them would leave lots unswept and Apple unanswered, so serve refuses.
func (a *app) startJobs(ctx context.Context) (stop func(), err error) {
	set, err := a.jobSet(false)
	if err != nil {
		return nil, err
	}
	a.warnConsentUnset()
	s := jobs.NewScheduler(a.runner(), set)
	s.Start(ctx)
	return s.Stop, nil
}

// warnConsentUnset warns at start when consumption answers could run but
// nothing says the customers consented: customer_consented defaults to
// false since it was true, so a deployment that relied on the old default
// stopped answering Apple, which the job's skips only say every few
// minutes at info.
func (a *app) warnConsentUnset() {
	c := a.settings.Config.Jobs.ConsumptionAnswers
	if a.settings.AppStore == nil || (c.Enabled != nil && !*c.Enabled) || c.CustomerConsented != nil {
		return
	}
	a.log.Warn("jobs.consumption_answers.customer_consented is not set, so no consumption answers are sent: " +
		"it defaults to false; set it to true if your terms obtain every customer's consent")
}
