#!/usr/bin/env bash
# Session 25: the same server (48b58c4) on a seed of 4 KiB pages and one of
# 2 KiB pages, both made by the tool at 0016 the same hour (the 2 KiB one by
# a throwaway build that sets page_size before WAL). Alternating starts,
# every path once a start (--scenario all), three rounds.
set -euo pipefail
out=$(dirname "$0")
for round in 1 2 3; do
	for label in p4k p2k; do
		/tmp/clH25 --creditsd /tmp/cdH25 --seed-cache /tmp/seedcache-$label --settle 30s --scenario all \
			--users 1000000 --lots 10000000 --expired 1000000 --runs 1 --duration 20s \
			--json "$out/$label-$round.json" > "$out/$label-$round.txt" 2>&1
	done
done
