package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// pprofEnv is where a creditsd built with -tags pprof serves net/http/pprof
// (cmd/creditsd/pprof.go).
const pprofEnv = "CREDITSD_PPROF"

// defaultProfileSeconds is how much of a run that is bounded by a count
// (the webhook's) the profile covers: its length is not known ahead.
const defaultProfileSeconds = 10

// freeLocalAddr is a loopback address with a port nothing listens on now,
// for the server's profiles.
func freeLocalAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// checkProfiles makes sure the server at addr serves profiles, so that a
// binary built without -tags pprof is named at once, not after the runs. A
// server that has just logged its address may take a moment to serve them.
func checkProfiles(ctx context.Context, addr string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	client := &http.Client{Timeout: time.Second} // a server that accepts but never answers is no better
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/pprof/", nil)
		if err != nil {
			return err
		}
		why := ""
		resp, err := client.Do(req)
		if err != nil {
			why = err.Error()
		} else {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			why = resp.Status
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("--profile: the server serves no profiles on %s (%s); build it with go build -tags pprof ./cmd/creditsd", addr, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// profile is a CPU profile of the server being taken over one timed run.
type profile struct {
	path string
	done chan error
}

// startProfile asks the server at addr for a CPU profile of the next
// seconds and saves it to dir/name.pprof; wait says how that went.
func startProfile(ctx context.Context, addr, dir, name string, seconds int) *profile {
	p := &profile{path: filepath.Join(dir, name+".pprof"), done: make(chan error, 1)}
	go func() {
		p.done <- fetchProfile(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, seconds), p.path)
	}()
	return p
}

func fetchProfile(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s: %s", url, resp.Status, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}

// wait is the profile's outcome, once the server has sent it.
func (p *profile) wait() error { return <-p.done }

// profileSeconds is how long a run's profile lasts: the run's duration
// when it has one.
func profileSeconds(duration time.Duration) int {
	if duration <= 0 {
		return defaultProfileSeconds
	}
	return max(1, int(duration.Round(time.Second)/time.Second))
}
