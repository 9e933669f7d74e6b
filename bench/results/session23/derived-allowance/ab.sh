#!/usr/bin/env bash
# alternate base (0015) and derived (0016) on their own seeds
set -u
out=$1; rounds=${ROUNDS:-3}; scen=${SCEN:-read,spend,webhook}
mkdir -p "$out"
for r in $(seq $rounds); do
  for side in base new; do
    if [[ $side == base ]]; then tool=/tmp/clB23 bin=/tmp/cdB23 cache=/tmp/seedcache-h15; dir=/tmp/base23
    else tool=/tmp/clD23 bin=/tmp/cdD23 cache=/tmp/seedcache-d; dir=/work/main; fi
    echo "round $r: $side $(date +%T)" >&2
    (cd $dir && $tool --creditsd $bin --seed-cache $cache --settle 30s --scenario $scen --users 1000000 --lots 10000000 --expired 1000000 \
      --runs 2 --duration 15s --json "$out/$side-$r.json" > "$out/$side-$r.txt" 2>&1)
  done
done
echo done >&2
