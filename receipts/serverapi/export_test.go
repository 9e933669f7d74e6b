package serverapi

import (
	"context"
	"time"
)

// SetSleep replaces the wait between retries, so tests can record the
// waits asked for instead of sleeping through them.
func SetSleep(c *Config, f func(ctx context.Context, d time.Duration) error) { c.sleep = f }
