package main

// JobsConfig schedules the background jobs.
type JobsConfig struct{}

func (j JobsConfig) check() error { return nil }
