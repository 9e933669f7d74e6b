package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/creditsd/creditsd/receipts/devca/simulator"
)

// simulatorStateFile is the simulator's memory of what it sold. It lives
// beside the CA directory (./creditsd-local/simulator.json for the local
// profile), so that removing the profile forgets the CA, the database and
// the sales together.
const simulatorStateFile = "simulator.json"

func simulatorStatePath(caDir string) string {
	return filepath.Join(filepath.Dir(filepath.Clean(caDir)), simulatorStateFile)
}

// How long a simulate run waits for another's lock, and when a lock is
// taken to be left behind by a run that was killed.
const (
	stateLockWait  = 10 * time.Second
	stateLockStale = time.Minute
)

// lockState takes path's lock file. Two simulate runs at once would
// otherwise number their sales alike or lose each other's writes. O_EXCL
// works the same on every OS, unlike flock.
func lockState(path string) (unlock func(), err error) {
	lock := path + ".lock"
	deadline := time.Now().Add(stateLockWait)
	for {
		f, err := os.OpenFile(lock, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(lock) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("simulator state: %w", err)
		}
		if info, err := os.Stat(lock); err == nil && time.Since(info.ModTime()) > stateLockStale {
			os.Remove(lock)
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("simulator state: %s is held by another run (remove it if none is running)", lock)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loadState reads the state at path; a missing file is a fresh state.
func loadState(path string) (*simulator.State, error) {
	st := &simulator.State{}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("simulator state: %w", err)
	}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("simulator state: %s: %w", path, err)
	}
	return st, nil
}

// saveState writes st to path through a temporary file and a rename, so
// that a crash leaves the old state or the new one, never half of one: the
// file is synced before the rename, and the directory after it.
func saveState(path string, st *simulator.State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), simulatorStateFile+".*")
	if err != nil {
		return fmt.Errorf("simulator state: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("simulator state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("simulator state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("simulator state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("simulator state: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("simulator state: %w", err)
	}
	return nil
}

// syncDir makes a rename in dir durable. Windows cannot sync a directory,
// so there the rename is left to the file system. devca keeps its own copy:
// receipts exports no file helpers for cmd.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
