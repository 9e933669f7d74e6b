// Command diskprobe measures what the database's two kinds of write cost on
// this disk, without SQLite: a checkpoint (random 4 KiB pages written into
// a large file, then fsync) and a WAL commit (pages appended, then fsync),
// alone and side by side. BENCHMARKS.md uses it to say how far the writer's
// COMMIT time is the disk's.
//
//	go run ./bench/diskprobe --file /tmp/probe.db --size-mib 5859
//
// The file is created in 4 KiB writes if it is missing or short, as SQLite
// writes its own (a file written in bulk is cached in large folios, and a
// page written into one then costs more: BENCHMARKS.md, session 5).
package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"slices"
	"time"
)

const page = 4096

func main() {
	var o options
	flag.StringVar(&o.file, "file", "", "the file the checkpoints write into (made if missing or short)")
	flag.Int64Var(&o.sizeMiB, "size-mib", 5859, "its size: the seeded 1M-user database's (5.7 GiB)")
	flag.IntVar(&o.rounds, "rounds", 8, "checkpoints of each size")
	flag.IntVar(&o.commits, "commits", 200, "commits alone, and twice as many beside checkpoints")
	flag.IntVar(&o.commitPages, "commit-pages", 60, "pages a commit appends (a webhook batch writes ~40–60)")
	flag.Parse()
	if o.file == "" {
		fmt.Fprintln(os.Stderr, "diskprobe: --file is required")
		os.Exit(2)
	}
	if err := run(o, []int{100, 1000, 4000}, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "diskprobe:", err)
		os.Exit(1)
	}
}

type options struct {
	file                         string
	sizeMiB                      int64
	rounds, commits, commitPages int
}

// run makes the file, then prints one line per checkpoint size, one for
// commits alone and one for commits while 1,000-page checkpoints run.
func run(o options, checkpointSizes []int, out io.Writer) error {
	db, err := ensureFile(o.file, o.sizeMiB<<20)
	if err != nil {
		return err
	}
	defer db.Close()
	wal, err := os.Create(o.file + "-probe-wal")
	if err != nil {
		return err
	}
	defer os.Remove(wal.Name())
	defer wal.Close()
	p := probe{db: db, wal: wal, pages: (o.sizeMiB << 20) / page, buf: make([]byte, page)}
	_, _ = rand.Read(p.buf)
	if _, err := p.commits(walBatches, o.commitPages); err != nil { // untimed: the WAL's space exists, as SQLite's does once in use
		return err
	}
	for _, n := range checkpointSizes {
		var writes, syncs []time.Duration
		for range o.rounds {
			w, s, err := p.checkpoint(n)
			if err != nil {
				return err
			}
			writes, syncs = append(writes, w), append(syncs, s)
		}
		fmt.Fprintf(out, "checkpoint of %d random pages: write p50 %v, fsync p50 %v p90 %v: %.1f µs a page\n",
			n, pct(writes, .5), pct(syncs, .5), pct(syncs, .9), float64(pct(writes, .5)+pct(syncs, .5))/float64(n)/1e3)
	}
	alone, err := p.commits(o.commits, o.commitPages)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "commit of %d pages alone: p50 %v p90 %v p99 %v\n", o.commitPages, pct(alone, .5), pct(alone, .9), pct(alone, .99))
	return p.besideCheckpoints(o, out)
}

// besideCheckpoints times commits while another goroutine checkpoints, as
// a checkpointer on its own connection would.
func (p probe) besideCheckpoints(o options, out io.Writer) error {
	stop, done := make(chan struct{}), make(chan error, 1)
	checkpoints := 0
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if _, _, err := p.checkpoint(1000); err != nil {
				done <- err
				return
			}
			checkpoints++
		}
	}()
	start := time.Now()
	beside, err := p.commits(2*o.commits, o.commitPages)
	took := time.Since(start)
	close(stop)
	if err := errors.Join(err, <-done); err != nil {
		return err
	}
	fmt.Fprintf(out, "commit of %d pages beside checkpoints: p50 %v p90 %v p99 %v (%d checkpoints of 1000 pages in %v)\n",
		o.commitPages, pct(beside, .5), pct(beside, .9), pct(beside, .99), checkpoints, took.Round(time.Millisecond))
	return nil
}

type probe struct {
	db, wal *os.File
	pages   int64
	buf     []byte
}

// checkpoint writes n random pages of the file and fsyncs it.
func (p probe) checkpoint(n int) (write, sync time.Duration, err error) {
	start := time.Now()
	for range n {
		if _, err := p.db.WriteAt(p.buf, mrand.Int64N(p.pages)*page); err != nil {
			return 0, 0, err
		}
	}
	wrote := time.Now()
	err = p.db.Sync()
	return wrote.Sub(start), time.Since(wrote), err
}

// walBatches is how many commits' space the WAL reuses, as SQLite starts
// its WAL over after each checkpoint instead of growing it.
const walBatches = 30

// commits appends n batches of pages to the WAL, each then fsynced, in the
// space of its first walBatches batches.
func (p probe) commits(n, pages int) ([]time.Duration, error) {
	var took []time.Duration
	for i := range n {
		start := time.Now()
		at := int64(i%walBatches) * int64(pages) * page
		for j := range pages {
			if _, err := p.wal.WriteAt(p.buf, at+int64(j)*page); err != nil {
				return nil, err
			}
		}
		if err := p.wal.Sync(); err != nil {
			return nil, err
		}
		took = append(took, time.Since(start))
	}
	return took, nil
}

// ensureFile opens path, first growing it to size in 4 KiB writes.
func ensureFile(path string, size int64) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	buf := make([]byte, page)
	for at := st.Size() / page * page; at < size; at += page {
		_, _ = rand.Read(buf)
		if _, err := f.WriteAt(buf, at); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, f.Sync()
}

// pct is the p-th percentile of d.
func pct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1))]
}
