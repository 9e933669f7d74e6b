#!/usr/bin/env bash
# Session 25's headline of 48b58c4 (this session's fixes; the request paths as b2bc065's but for the
# entitlement's null lot keys and WriteJSON marshaling first), then the reads at 12 and 10 clients.
set -euo pipefail
out=$(dirname "$0")
/tmp/clH25 --creditsd /tmp/cdH25 --seed-cache /tmp/seedcache-h16 --settle 60s --scenario all --users 1000000 \
	--lots 10000000 --expired 1000000 --runs 3 --duration 20s --peer --json "$out/headline.json" > "$out/headline.txt" 2>&1
for c in 12 10; do
	/tmp/clH25 --creditsd /tmp/cdH25 --seed-cache /tmp/seedcache-h16 --settle 60s --scenario read --concurrency $c \
		--users 1000000 --lots 10000000 --expired 1000000 --runs 3 --duration 20s --json "$out/read$c.json" > "$out/read$c.txt" 2>&1
done
