#!/usr/bin/env bash
# The session's two sweep changes together: 368207f (/tmp/cdB21, its tool /tmp/clB21) on copies of
# /tmp/seedcache-f (made with 0013), against 20c8d9a (/tmp/cdH21f: 66e6587's code, its tool
# /tmp/clH21f) on copies of /tmp/seedcache-g (the same seed migrated to 0014), so that neither
# migrates a copy at start. The tool's code is the same at both commits. Alternating starts, three
# rounds, the sweep beside 32 spending clients.
set -u
out=$(dirname "$0")
for round in 1 2 3; do
  for spec in before=/tmp/cdB21,/tmp/clB21,/tmp/seedcache-f after=/tmp/cdH21f,/tmp/clH21f,/tmp/seedcache-g; do
    label=${spec%%=*} rest=${spec#*=}
    IFS=, read -r server tool cache <<<"$rest"
    echo "round $round: $label ($server on $cache) $(date -u +%H:%M:%S)" >&2
    "$tool" --creditsd "$server" --seed-cache "$cache" --settle 30s --scenario sweep \
      --users 1000000 --lots 10000000 --expired 1000000 --runs 2 --duration 15s \
      --json "$out/$label-$round.json" > "$out/$label-$round.txt" 2>&1
  done
done
