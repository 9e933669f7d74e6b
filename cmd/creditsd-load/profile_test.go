package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestProfileSavesWhatTheServerSends(t *testing.T) {
	var asked string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = r.URL.Path + "?" + r.URL.RawQuery
		_, _ = w.Write([]byte("a profile"))
	}))
	defer srv.Close()
	dir := t.TempDir()
	p := startProfile(context.Background(), strings.TrimPrefix(srv.URL, "http://"), dir, "read-2", 7)
	require.NoError(t, p.wait())
	require.Equal(t, "/debug/pprof/profile?seconds=7", asked)
	require.Equal(t, filepath.Join(dir, "read-2.pprof"), p.path)
	b, err := os.ReadFile(p.path)
	require.NoError(t, err)
	require.Equal(t, "a profile", string(b))
}

func TestProfileFailureIsReported(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "profiling already in use", http.StatusInternalServerError)
	}))
	defer srv.Close()
	dir := t.TempDir()
	p := startProfile(context.Background(), strings.TrimPrefix(srv.URL, "http://"), dir, "spend-1", 1)
	require.ErrorContains(t, p.wait(), "profiling already in use")
	require.NoFileExists(t, p.path, "no file for a profile that was not taken")
}

func TestCheckProfilesNamesABinaryWithout(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	err := checkProfiles(context.Background(), strings.TrimPrefix(srv.URL, "http://"), 200*time.Millisecond)
	require.ErrorContains(t, err, "-tags pprof")
	require.ErrorContains(t, err, "404 Not Found", "it says what the server answered")

	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/debug/pprof/", r.URL.Path)
	}))
	defer ok.Close()
	require.NoError(t, checkProfiles(context.Background(), strings.TrimPrefix(ok.URL, "http://"), time.Second))
}

func TestProfileSeconds(t *testing.T) {
	require.Equal(t, 20, profileSeconds(20*time.Second), "a timed run's profile covers it")
	require.Equal(t, 1, profileSeconds(200*time.Millisecond), "never 0: pprof would take its default 30s")
	require.Equal(t, defaultProfileSeconds, profileSeconds(0), "a count-bound run: the first seconds")
}

func TestProfileNeedsAServerTheToolStarts(t *testing.T) {
	_, err := parseOptions([]string{"--target", "http://127.0.0.1:8080", "--secret", "s", "--ca-dir", "ca", "--profile", "p"}, io.Discard)
	require.ErrorContains(t, err, "--profile needs a server the tool starts")
	o, err := parseOptions([]string{"--profile", "p"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "p", o.profileDir)
}
