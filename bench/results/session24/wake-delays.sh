#!/usr/bin/env bash
# wake-delays.sh TRACE: how long goroutines waited, once runnable, for a thread to run them,
# from a Go execution trace (curl 'http://$CREDITSD_PPROF/debug/pprof/trace?seconds=4' > TRACE
# from a server built with -tags pprof). "sys" waits are of goroutines made runnable by no
# goroutine (the network poller, timers); "go" waits of goroutines another goroutine woke.
# Session 24 ran it on a 4 s trace at 10 read clients (BENCHMARKS.md, "The reads' tail").
set -euo pipefail
go tool trace -d=parsed "$1" 2>/dev/null | awk '
/ StateTransition / && /Waiting->Runnable/ {
  match($0, /Time=[0-9]+/); t = substr($0, RSTART+5, RLENGTH-5)
  match($0, /GoID=[0-9]+/); g = substr($0, RSTART+5, RLENGTH-5)
  split($3, a, "="); ready[g] = t; kind[g] = (a[2] == "-1") ? "sys" : "go"; next }
/ StateTransition / && /Runnable->Running/ {
  match($0, /GoID=[0-9]+/); g = substr($0, RSTART+5, RLENGTH-5)
  if (g in ready) { match($0, /Time=[0-9]+/); t = substr($0, RSTART+5, RLENGTH-5)
    print kind[g], (t - ready[g]) / 1000.0; delete ready[g] } }' |
sort -k1,1 -k2,2n | awk '
function report() { if (n) printf "%s: n=%d mean=%.0f p50=%.0f p90=%.0f p99=%.0f p99.9=%.0f max=%.0f µs\n",
  k, n, s/n, v[int(n*0.5)], v[int(n*0.9)], v[int(n*0.99)], v[int(n*0.999)], v[n] }
$1 != k { report(); k = $1; n = 0; s = 0 }
{ v[++n] = $2; s += $2 }
END { report() }'
