// Command creditsd turns App Store purchases into credits and decides,
// before every AI generation, whether a user may have it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal starts the graceful shutdown, a second one
	// takes the default action and ends the process at once: an operator
	// who will not wait for requests in flight need not reach for kill -9.
	// Nothing acknowledged is lost either way (synchronous=FULL).
	go func() { <-ctx.Done(); stop() }()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !shown(err) {
			fmt.Fprintln(os.Stderr, "creditsd:", err)
		}
		os.Exit(exitCode(err))
	}
}
