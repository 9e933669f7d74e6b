#!/usr/bin/env bash
# head (790cd74) on a copy of the 0012 seed that the tool migrates to 0013 (211,809 free pages)
# against head on a seed made with 0013 from the start (no free pages); alternating starts.
set -u
for round in 1 2; do
  for spec in migrated=/tmp/seedcache-e fresh=/tmp/seedcache-f; do
    label=${spec%%=*} cache=${spec#*=}
    echo "round $round: $label ($cache)" >&2
    /tmp/clH20 --creditsd /tmp/cdN20b --seed-cache "$cache" --settle 30s --scenario spend,webhook \
      --users 1000000 --lots 10000000 --expired 1000000 --runs 2 --duration 15s \
      --json /tmp/s20/fresh/$label-$round.json > /tmp/s20/fresh/$label-$round.txt 2>&1
  done
done
