#!/usr/bin/env bash
# sidebyside.sh measures two or more creditsd binaries on the same seeded
# database, alternating their server starts. Throughput moves ±15 % between
# starts on a shared 2-core machine; alternating puts that drift on every
# binary alike, which back-to-back runs do not. BENCHMARKS.md's side-by-side
# tables come from this.
#
#   bench/sidebyside.sh SCENARIO OUTDIR LABEL=BINARY... [-- creditsd-load flags]
#
#   go build -buildvcs=true -o /tmp/base ./cmd/creditsd    # at the commit to compare against
#   go build -buildvcs=true -o /tmp/new ./cmd/creditsd     # with the change
#   bench/sidebyside.sh spend /tmp/ab base=/tmp/base new=/tmp/new
#
# -buildvcs=true stamps each binary's commit, which the tool's report names
# (`creditsd version`); some machines turn stamping off in GOFLAGS.
#
# Each binary gets ROUNDS (2) starts of 2 runs of 15 s on 1M users, 10M lots
# and 1M expired ones, copied from SEED_CACHE (/tmp/seedcache; seeding it
# the first time takes ~5 min; lots granted by time, the tool's default).
# The tool migrates each copy with the checkout's migrations (every
# embedded migrations/*.sql, committed or not) before the server starts.
# So when a binary adds a migration, run this from the base's checkout:
# the new binary then migrates its own copy at start, before it listens
# (the tool waits 60 s), and the base runs on the schema it knows.
#
# Flags after -- are passed on and override these. Every start leaves
# OUTDIR/LABEL-ROUND.txt and .json; the summary at the end reads them.
# Run it from the repository's root, on an idle machine: the tool waits
# (--settle) for other work to stop first.
set -euo pipefail

if [[ $# -lt 3 ]]; then
	sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0" # the comment above
	exit 2
fi
scenario=$1 outdir=$2
shift 2
specs=()
while [[ $# -gt 0 && $1 != -- ]]; do
	[[ $1 == *=* ]] || { echo "sidebyside: want LABEL=BINARY, got $1" >&2; exit 2; }
	specs+=("$1")
	shift
done
[[ ${1:-} == -- ]] && shift
extra=("$@")
rounds=${ROUNDS:-2}

[[ -d cmd/creditsd-load ]] || { echo "sidebyside: run it from the repository's root" >&2; exit 2; }
mkdir -p "$outdir"
# The tool is built outside OUTDIR, which is kept (often under bench/results).
tooldir=$(mktemp -d)
trap 'rm -rf "$tooldir"' EXIT
tool=$tooldir/creditsd-load
go build -o "$tool" ./cmd/creditsd-load

for round in $(seq "$rounds"); do
	for spec in "${specs[@]}"; do
		label=${spec%%=*} binary=${spec#*=}
		echo "round $round: $label ($binary)" >&2
		"$tool" --creditsd "$binary" --seed-cache "${SEED_CACHE:-/tmp/seedcache}" --settle 30s \
			--scenario "$scenario" --users 1000000 --lots 10000000 --expired 1000000 \
			--runs 2 --duration 15s "${extra[@]}" \
			--json "$outdir/$label-$round.json" >"$outdir/$label-$round.txt" 2>&1
	done
done

# Which code each label ran, as its binary says (the first line of its report).
for spec in "${specs[@]}"; do
	label=${spec%%=*}
	sed -n "s/^creditsd \(.*\) on [0-9][0-9]* × .*/$label: creditsd \1/p" "$outdir/$label-1.txt"
done

# One line per timed run, from the tool's table. Its columns are found by
# their headings, so a column the tool adds does not shift what is read.
printf '%-12s %5s %-8s %9s %8s %8s %7s\n' label round scenario ok/s p99_ms rss_MB cores
for spec in "${specs[@]}"; do
	label=${spec%%=*}
	for round in $(seq "$rounds"); do
		awk -v l="$label" -v r="$round" '
			$1 == "scenario" { # a table starts: which column is which
				delete col
				if (!/ok\/s/) next # the cost table
				line = $0
				gsub(/ ms/, "", line); gsub(/peak RSS MB/, "rss", line); gsub(/ cores/, "", line)
				n = split(line, h)
				for (i = 1; i <= n; i++) col[h[i]] = i
				next
			}
			("ok/s" in col) && $1 ~ /^(read|spend|webhook|healthz)$/ && $2 ~ /^[0-9]+$/ {
				printf "%-12s %5s %-8s %9s %8s %8s %7s\n", l, r, $1, $col["ok/s"], $col["p99"], $col["rss"], $col["server"]
			}' "$outdir/$label-$round.txt"
	done
done
# The sweep's result is a sentence, not a table row.
for spec in "${specs[@]}"; do
	label=${spec%%=*}
	for round in $(seq "$rounds"); do
		grep -h -E '^sweep in the server|^  (spends|reads) during it' "$outdir/$label-$round.txt" |
			sed "s/^/$label $round: /" || true
	done
done
