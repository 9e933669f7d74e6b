#!/usr/bin/env bash
# Session 34's headline, on the seed whose expired lots are spread over every user (7a84617's
# expiredLot): one server for all scenarios, then the reads at 12 and at 10 clients, each on its own.
# Run from the repository's root; /tmp/cdH34 and /tmp/clH34 are `go build -buildvcs=true` of the
# commit the report names.
set -eu
out=bench/results/session34/headline
seed=/tmp/seedcache-34
/tmp/clH34 --creditsd /tmp/cdH34 --seed-cache $seed --settle 60s --scenario all --users 1000000 \
  --lots 10000000 --expired 1000000 --runs 3 --duration 20s --peer --json $out/headline.json >$out/headline.txt 2>$out/headline.log
for c in 12 10; do
  /tmp/clH34 --creditsd /tmp/cdH34 --seed-cache $seed --settle 60s --scenario read --concurrency $c \
    --users 1000000 --lots 10000000 --expired 1000000 --runs 3 --duration 20s --json $out/read$c.json >$out/read$c.txt 2>$out/read$c.log
done
