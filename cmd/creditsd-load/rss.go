package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// rssSampler reads a process's resident memory from /proc every 100 ms.
// Sampling catches the working set; VmHWM, the kernel's own high-water
// mark, catches a peak between two samples. Each is a little off the
// other (the kernel's counters are kept per CPU and summed lazily: session
// 25's headline sampled 115.6 MB and read a VmHWM of 115.2), so the life's
// peak is the higher of the two.
type rssSampler struct {
	pid  int
	now  atomic.Int64 // bytes, the latest VmRSS
	peak atomic.Int64 // bytes, the highest VmRSS since the last reset
	life atomic.Int64 // bytes, the highest VmRSS sampled ever
	stop chan struct{}
	wg   sync.WaitGroup
}

// newRSSSampler starts sampling pid; a pid of 0 gives a sampler that
// reports nothing (a remote target).
func newRSSSampler(pid int) *rssSampler {
	s := &rssSampler{pid: pid, stop: make(chan struct{})}
	if pid == 0 {
		return s
	}
	s.wg.Go(s.loop)
	return s
}

func (s *rssSampler) loop() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		s.sample()
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

func (s *rssSampler) sample() {
	st, err := readProcStatus(s.pid)
	if err != nil {
		return // the process is gone; keep what was seen
	}
	s.now.Store(st.rss)
	raise(&s.peak, st.rss)
	raise(&s.life, st.rss)
}

// raise sets v to n if n is higher.
func raise(v *atomic.Int64, n int64) {
	for {
		p := v.Load()
		if n <= p || v.CompareAndSwap(p, n) {
			return
		}
	}
}

// resetPeak starts a new window, so each scenario reports its own peak.
func (s *rssSampler) resetPeak() {
	if s != nil {
		s.peak.Store(s.now.Load())
	}
}

// peakMB is the highest sampled VmRSS since the last reset.
func (s *rssSampler) peakMB() float64 {
	if s == nil || s.pid == 0 {
		return 0
	}
	s.sample()
	return mb(s.peak.Load())
}

// hwmMB is the peak over the process's whole life: the kernel's VmHWM,
// or the highest VmRSS sampled if that is higher (or the process is gone).
func (s *rssSampler) hwmMB() float64 {
	if s == nil || s.pid == 0 {
		return 0
	}
	hwm := s.life.Load()
	if st, err := readProcStatus(s.pid); err == nil {
		hwm = max(hwm, st.hwm)
	}
	return mb(hwm)
}

func (s *rssSampler) progress() string {
	if s == nil || s.pid == 0 {
		return ""
	}
	return fmt.Sprintf(" rss=%.0fMB", mb(s.now.Load()))
}

func (s *rssSampler) close() {
	if s == nil {
		return
	}
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.wg.Wait()
}

type procStatus struct{ rss, hwm int64 }

func readProcStatus(pid int) (procStatus, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procStatus{}, err
	}
	defer f.Close()
	return parseProcStatus(bufio.NewScanner(f))
}

// parseProcStatus reads the VmRSS and VmHWM lines ("VmRSS:   12345 kB").
func parseProcStatus(sc *bufio.Scanner) (procStatus, error) {
	var st procStatus
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return st, fmt.Errorf("/proc status %s: %w", key, err)
		}
		if key == "VmRSS" {
			st.rss = kb << 10
		} else {
			st.hwm = kb << 10
		}
	}
	return st, sc.Err()
}

func mb(bytes int64) float64 { return float64(bytes) / (1 << 20) }
