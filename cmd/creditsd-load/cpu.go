package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// On a 2-core machine the load generator competes with the server for the
// CPU, so every run says how many cores each of them used: a server at 1.2
// cores beside a client at 0.8 is saturated by the machine, not by itself.

// clockTick is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go runs on.
const clockTick = 100

// cpuUse is CPU time consumed so far by the server, by this process and
// by the whole machine (every process, the kernel's own work included).
type cpuUse struct{ server, self, machine time.Duration }

func readCPU(pid int) cpuUse {
	var u cpuUse
	if pid != 0 {
		u.server, _ = procCPU(pid)
	}
	u.machine, _ = machineCPU()
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		u.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return u
}

// cores is the CPU used between u and later, in cores over wall: the
// server's, this tool's, and everything else's (other processes, and
// kernel work such as loopback networking charged to no one of them).
// They are not rounded: a run's figures per answer are worked out from
// them, and Summary.setCores rounds what the report shows.
func (u cpuUse) cores(later cpuUse, wall time.Duration) (server, self, other float64) {
	if wall <= 0 {
		return 0, 0, 0
	}
	per := func(d time.Duration) float64 { return float64(d) / float64(wall) }
	server, self = per(later.server-u.server), per(later.self-u.self)
	if later.machine > 0 {
		other = max(0, per(later.machine-u.machine-(later.server-u.server)-(later.self-u.self)))
	}
	return server, self, other
}

// machineCPU is the busy time of every CPU since boot, from /proc/stat:
// everything but idle and iowait.
func machineCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseMachineStat(string(b))
}

func parseMachineStat(s string) (time.Duration, error) {
	line, _, _ := strings.Cut(s, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var busy int64
	for i, field := range f[1:9] { // user nice system idle iowait irq softirq steal
		n, err := strconv.ParseInt(field, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / clockTick, nil
}

// procCPU is utime+stime of pid, from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseProcStat(string(b))
}

// parseProcStat reads fields 14 and 15 (utime, stime). The command name in
// field 2 may hold spaces and parentheses, so fields are counted from the
// last ')'.
func parseProcStat(s string) (time.Duration, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat: no command name")
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields", len(f))
	}
	var ticks int64
	for _, field := range f[11:13] {
		n, err := strconv.ParseInt(field, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTick, nil
}

func round2(x float64) float64 { return float64(int64(x*100+0.5)) / 100 }

// settleBusy is how busy the machine may be, in cores, before a timed run
// starts: the server and this tool are idle between runs, so anything above
// it is someone else's work that would be measured as creditsd's slowness.
const settleBusy = 0.25

// settle waits, at most limit, until the machine has been nearly idle for
// a second, and says how long it waited. A shared machine (other builds and
// test suites) otherwise shows up as noise in every figure.
func settle(limit time.Duration, progress func(format string, args ...any)) time.Duration {
	start := time.Now()
	for time.Since(start) < limit {
		before, err := machineCPU()
		if err != nil {
			return 0
		}
		time.Sleep(time.Second)
		after, _ := machineCPU()
		busy := float64(after-before) / float64(time.Second)
		if busy < settleBusy {
			return time.Since(start)
		}
		progress("machine busy (%.2f cores of other work); waiting for it to settle", busy)
	}
	return time.Since(start)
}
