package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// report is everything one invocation measured.
type report struct {
	Machine     machine          `json:"machine"`
	Seed        *seedReport      `json:"seed,omitempty"`
	Scenarios   []scenarioResult `json:"scenarios"`
	ServerHWMMB float64          `json:"server_vmhwm_mb"` // the server's peak RSS over its whole life
}

type machine struct {
	CPUs          int    `json:"cpus"`
	CPU           string `json:"cpu"`
	Go            string `json:"go"`
	Commit        string `json:"commit"`                   // the tool's own (toolCommit)
	Server        string `json:"server,omitempty"`         // the creditsd binary measured, when --creditsd named one
	ServerVersion string `json:"server_version,omitempty"` // what that binary says it is (creditsd version); not with --target
}

func describeMachine() machine {
	return machine{CPUs: runtime.NumCPU(), CPU: cpuModel(), Go: runtime.Version(), Commit: toolCommit()}
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// toolCommit names the tool's own code: the commit go build stamped into
// it (with -buildvcs=true), else the checkout it runs in, which may have
// moved on since the tool was built.
func toolCommit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		if c := stampedCommit(bi.Settings); c != "" {
			return c
		}
	}
	return gitCommit()
}

// stampedCommit is the short commit in go build's vcs settings, "+dirty"
// when the tree had changes; "" when the build was not stamped.
func stampedCommit(settings []debug.BuildSetting) string {
	var rev string
	dirty := false
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 7 {
		rev = rev[:7]
	}
	if rev != "" && dirty {
		rev += "+dirty"
	}
	return rev
}

// gitCommit names the checkout's code, when run inside the repository.
func gitCommit() string {
	head, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(head))
	if st, err := exec.Command("git", "status", "--porcelain").Output(); err == nil && len(st) > 0 {
		c += "+dirty"
	}
	return c
}

// serverVersion asks the binary measured what it is. Side-by-side runs
// measure binaries built at other commits than the checkout the tool runs
// in, so the checkout's HEAD cannot name them.
func serverVersion(ctx context.Context, bin string) string {
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if v, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "creditsd "); err == nil && ok && v != "" {
		return v
	}
	return "unknown"
}

// serverName is how the table names the server measured.
func (m machine) serverName() string {
	switch m.ServerVersion {
	case "":
		return "at --target"
	case "dev":
		return "dev (built without -buildvcs: its commit is not known)"
	}
	return m.ServerVersion
}

// write prints the table, and the JSON where jsonOut says; with "-" the
// JSON goes to stdout, and the table to stderr beside the progress.
func (r report) write(stdout, stderr io.Writer, jsonOut string) error {
	if jsonOut == "-" {
		r.table(stderr)
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	r.table(stdout)
	if jsonOut == "" {
		return nil
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(jsonOut, append(b, '\n'), 0o644)
}

func (r report) table(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "creditsd %s on %d × %s, %s (the load tool at %s)\n", m.serverName(), m.CPUs, m.CPU, m.Go, m.Commit)
	if m.Server != "" {
		fmt.Fprintf(w, "server binary: %s\n", m.Server)
	}
	if s := r.Seed; s != nil {
		layout := "spread"
		if s.Together {
			layout = "together"
		}
		order := "user"
		if s.ByTime {
			order = "time"
		}
		fmt.Fprintf(w, "seeded %d users, %d lots (%d expired, %s; by %s) in %.1fs: %.0f lots/s; %s\n", s.Users, s.Lots, s.Expired, layout,
			order, s.Seconds, s.LotsPerSec, s.schemaText())
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\trun\tclients\trequests\tok/s\tp50 ms\tp95 ms\tp99 ms\tmax ms\terrors\tpeak RSS MB\tserver cores\tload cores\tother cores\t")
	for _, s := range r.Scenarios {
		for i, run := range s.Runs {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%.1f\t%.2f\t%.2f\t%.2f\t\n", s.Name, i+1, s.Concurrency,
				run.Requests, run.PerSecond, run.P50ms, run.P95ms, run.P99ms, run.Maxms, errorText(run.Errors), s.PeakRSSMB,
				run.ServerCores, run.LoadCores, run.OtherCores)
		}
	}
	tw.Flush()
	r.costTable(w)
	for _, s := range r.Scenarios {
		if s.Rate > 0 {
			fmt.Fprintf(w, "%s: open loop, %.0f requests/s offered; latency counts from when each request was due\n", s.Name, s.Rate)
		}
		s.notes(w)
	}
	fmt.Fprintf(w, "server VmHWM (peak RSS over its life): %.1f MB\n", r.ServerHWMMB)
}

// costTable prints what each run cost the server (cost.go), if any run
// could read it.
func (r report) costTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := false
	for _, s := range r.Scenarios {
		for i, run := range s.Runs {
			c := run.Cost
			if c == nil {
				continue
			}
			if !header {
				fmt.Fprintln(w, "what each run cost the server (per write: its one writer's time; per request: KiB through read/write system calls, files and sockets, and to or from the disk, the time in its handlers by its own histogram, and the CPU the server and this tool spent per 2xx answer, none beside the sweep):")
				fmt.Fprintln(tw, "scenario\trun\twriter busy\tSQL µs/write\tCOMMIT µs/write\twrites/commit\twritten\tdisk written\tread\tdisk read\thandler mean ms\thandler p99 ≤ ms\tserver CPU µs\tload CPU µs\t")
				header = true
			}
			fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.0f\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.2f\t%s\t%s\t%s\t\n", s.Name, i+1, c.WriterBusy, c.SQLMicros,
				c.CommitMicros, c.WritesPerCommit, c.WrittenKiB, c.DiskWriteKiB, c.ReadKiB, c.DiskReadKiB, c.HandlerMeanMs, bucketText(c.HandlerP99Ms),
				microsText(run.ServerCPUMicros), microsText(run.LoadCPUMicros))
		}
	}
	tw.Flush()
}

// microsText is a whole number of µs, or "-" for none.
func microsText(us float64) string {
	if us == 0 {
		return "-"
	}
	return strconv.FormatFloat(us, 'f', 0, 64)
}

// bucketText is a histogram bucket's bound in ms, or "-" for none.
func bucketText(ms float64) string {
	if ms == 0 {
		return "-"
	}
	return strconv.FormatFloat(ms, 'g', -1, 64)
}

func (s scenarioResult) notes(w io.Writer) {
	if s.Note != "" {
		fmt.Fprintf(w, "%s: %s\n", s.Name, s.Note)
	}
	if sw := s.Sweep; sw != nil {
		sw.notes(w)
	}
	if p := s.Peer; p != nil {
		fmt.Fprintf(w, "peer: Apple's library verified %d notification+transaction pairs in %.2fs = %.0f/s (one core: %v); creditsd/apple = %.1f×\n",
			p.Count, p.Seconds, p.PerSecond, p.Pinned, p.Ratio)
	}
}

// sweepLabels say in the report who ran the sweep.
var sweepLabels = map[string]string{
	sweepInServer:  "in the server (its scheduler; batches queue on the one writer, with any writes)",
	sweepInProcess: "as a process (`creditsd jobs run expiry-sweep` beside the server)",
}

func (sw *sweepResult) notes(w io.Writer) {
	d, b, what := sw.beside()
	fmt.Fprintf(w, "sweep %s: %.2fs (job_runs: %.2fs) after %.1fs of %s; %s\n",
		sweepLabels[sw.In], sw.Seconds, sw.RunSeconds, sw.WarmupSeconds, what, sw.Output)
	fmt.Fprintf(w, "  checked: %d expire entries on %d lots, %d of them seeded as expired (seeded: %d), %d expired lots left\n",
		sw.Check.Entries, sw.Check.Lots, sw.Check.SeededLots, sw.ExpiredLots, sw.Check.Left)
	fmt.Fprintf(w, "  %s during it: %.0f/s ok, p50 %.2f, p95 %.2f, p99 %.2f, max %.2f ms, errors %s; before it: %.0f/s, p99 %.2f ms, errors %s\n",
		what, d.PerSecond, d.P50ms, d.P95ms, d.P99ms, d.Maxms, errorText(d.Errors), b.PerSecond, b.P99ms, errorText(b.Errors))
}

func errorText(errs map[string]int) string {
	if len(errs) == 0 {
		return "0"
	}
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%d", k, errs[k])
	}
	return strings.Join(parts, ",")
}
