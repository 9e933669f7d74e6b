#!/usr/bin/env bash
# a64fdee on the 0012 seed (as in session 19) against 790cd74 on a seed made with 0013 from the
# start: each binary on its own schema, neither migrating; alternating starts.
set -u
for round in 1 2; do
  for spec in base=/tmp/clB20:/tmp/cdB20:/tmp/seedcache-e head=/tmp/clH20:/tmp/cdN20b:/tmp/seedcache-f; do
    label=${spec%%=*} rest=${spec#*=}
    IFS=: read -r tool bin cache <<< "$rest"
    echo "round $round: $label ($bin on $cache)" >&2
    "$tool" --creditsd "$bin" --seed-cache "$cache" --settle 30s --scenario spend,webhook \
      --users 1000000 --lots 10000000 --expired 1000000 --runs 2 --duration 15s \
      --json /tmp/s20/fresh/ab2-$label-$round.json > /tmp/s20/fresh/ab2-$label-$round.txt 2>&1
  done
done
