package main

import "context"

// startJobs starts the job scheduler; the returned function stops it and
// waits for running jobs.
func (a *app) startJobs(ctx context.Context) (stop func()) {
	return func() {}
}
