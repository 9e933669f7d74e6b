package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// tokenCommand is `creditsd token --user U [--scope S] [--ttl D]`: print a
// bearer token signed with the configured HS256 secret (the local
// profile's by default), so that trying the API needs no identity
// provider. With a credits: scope, --user names the calling service.
func tokenCommand(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, configPath := newFlagSet("token", stderr)
	user := fs.String("user", "", "the token's sub: a user id, or with a credits: scope the calling service")
	scope := fs.String("scope", "", `space-separated scopes, e.g. "credits:spend" (none: a user token)`)
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	rest, err := parseFlags(fs, args)
	switch {
	case err != nil:
		return err
	case len(rest) > 0:
		return usageError{msg: fmt.Sprintf("token takes no arguments, got %q", rest)}
	case *user == "":
		return usageError{msg: "usage: creditsd token --user U [--scope S] [--ttl D] [--config FILE]"}
	case *ttl <= 0:
		return usageError{msg: fmt.Sprintf("token: --ttl %s: want a positive duration", *ttl)}
	}
	s, _, err := loadSettings(*configPath, getenv)
	if err != nil {
		return err
	}
	token, err := s.Auth.Mint(*user, *scope, *ttl, time.Now())
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	_, err = fmt.Fprintln(stdout, token)
	return err
}
