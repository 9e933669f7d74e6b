package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=…";
// without it, `creditsd version` names the commit (buildVersion).
var version = "dev"

// usageError is a mistake in the command line; it exits 2. shown says the
// flag package has printed it already, with the command's flags.
type usageError struct {
	msg   string
	shown bool
}

func (e usageError) Error() string { return e.msg }

// stoppedError is work a signal stopped before it finished, which judged
// nothing; it exits 3, so that a wrapper (timeout, cron) tells it from a
// failure (1).
type stoppedError struct{ err error }

func (e stoppedError) Error() string { return e.err.Error() }
func (e stoppedError) Unwrap() error { return e.err }

// shown says whether err has been printed already.
func shown(err error) bool {
	var u usageError
	return errors.As(err, &u) && u.shown
}

func exitCode(err error) int {
	var u usageError
	var s stoppedError
	switch {
	case errors.As(err, &u):
		return 2
	case errors.As(err, &s):
		return 3
	}
	return 1
}

const usage = `usage: creditsd <command> [flags]

commands:
  serve [--config FILE] [--listen ADDR]
                                     run the HTTP API, the webhook and the job scheduler
  jobs run NAME [--config FILE]      run one job now (expiry-sweep, daily-reset, reconcile, consumption-answers)
  ledger check [--config FILE] [--kept-from DAY]
                                     rebuild every balance from the ledger's entries; exit 1 on a mismatch,
                                     3 if a signal stops it first
  backup FILE [--config FILE]        write a consistent copy of the database to the new FILE, beside a
                                     live server (restore: README, Operations)
  simulate ACTION [flags]            a local App Store: sign purchases, refunds and renewals with the
                                     development CA and send them to the webhook (purchase, refund,
                                     refund-reversed, subscribe, renew, expire, consumption-request, test)
  token --user U [--scope S] [--ttl D]
                                     print a bearer token signed with the configured HS256 secret
  version                            print the version

The config path may also come from CREDITSD_CONFIG; --config wins. With no
config at all, creditsd uses a safe local profile in ./creditsd-local/.`

// run is the whole program, testable: main only adds signals and the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, getenv, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil // the flag package printed the command's usage: asked for, not a mistake
	}
	return err
}

func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	name, rest := splitCommand(args)
	if name == "" && wantsHelp(rest) {
		name = "help"
	}
	switch name {
	case "serve":
		return serveCommand(ctx, rest, getenv, stdout, stderr)
	case "jobs":
		return jobsCommand(ctx, rest, getenv, stdout, stderr)
	case "ledger":
		return ledgerCommand(ctx, rest, getenv, stdout, stderr)
	case "backup":
		return backupCommand(ctx, rest, getenv, stdout, stderr)
	case "simulate":
		return simulateCommand(ctx, rest, getenv, stdout, stderr)
	case "token":
		return tokenCommand(ctx, rest, getenv, stdout, stderr)
	case "version":
		return versionCommand(rest, stdout, stderr)
	case "", "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		if name == "" {
			return usageError{msg: "no command given"}
		}
		return nil
	}
	return usageError{msg: fmt.Sprintf("unknown command %q\n%s", name, usage)}
}

// versionCommand prints the version. It takes the flags every command
// takes (--config, which it does not need), so that a caller can pass the
// same flags to every command, but no arguments.
func versionCommand(args []string, stdout, stderr io.Writer) error {
	fs, _ := newFlagSet("version", stderr)
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError{msg: fmt.Sprintf("version takes no arguments, got %q", rest)}
	}
	info, ok := debug.ReadBuildInfo()
	_, err = fmt.Fprintln(stdout, "creditsd", buildVersion(version, info, ok))
	return err
}

// buildVersion is the version set at build time, else the commit `go
// build` stamped into the binary: dev+ its first 12 hex digits, and
// ".dirty" when the tree had uncommitted changes. The load tool names the
// server it measured by it, which need not be the checkout it runs in.
func buildVersion(set string, info *debug.BuildInfo, ok bool) string {
	if set != "dev" || !ok {
		return set
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value[:min(len(s.Value), 12)]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = ".dirty"
		}
	}
	if rev == "" {
		return set
	}
	return set + "+" + rev + dirty
}

// valueFlags are the flags that take a separate value, so that
// "creditsd --config f serve" finds "serve" and not "f" as the command.
var valueFlags = map[string]bool{"config": true, "listen": true,
	"ca-dir": true, "server": true, "environment": true, "bundle-id": true, "user": true, "product": true,
	"quantity": true, "purchased-at": true, "transaction": true, "percent": true, "scope": true, "ttl": true}

// splitCommand finds the command among args, wherever flags stand, and
// returns it with the other arguments in their order.
func splitCommand(args []string) (string, []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			rest := append(append([]string(nil), args[:i]...), args[i+1:]...)
			return a, rest
		}
		if name := strings.TrimLeft(a, "-"); valueFlags[name] && !strings.Contains(name, "=") {
			i++
		}
	}
	return "", args
}

// wantsHelp reports -h or --help among args.
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			return true
		}
	}
	return false
}

// parseFlags parses fs from args, letting flags stand before or after the
// positional arguments, which it returns.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
			return nil, err
		} else if err != nil {
			return nil, usageError{msg: err.Error(), shown: true}
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// newFlagSet is a flag set with the flags every command takes.
func newFlagSet(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := new(string)
	fs.Func("config", "config `FILE` (default: $CREDITSD_CONFIG, else the local profile)", func(v string) error {
		if v == "" { // a deployment template's unset variable: "no flag" would start the local profile
			return errors.New("needs a file; leave the flag out for $CREDITSD_CONFIG or the local profile")
		}
		*configPath = v
		return nil
	})
	return fs, configPath
}
