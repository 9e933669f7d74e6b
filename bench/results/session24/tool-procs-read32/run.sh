#!/usr/bin/env bash
# The load tool on 2 Ps (its default here) against 4 (GOMAXPROCS=4 in its environment), the server
# the same in both: a throwaway build with 4 readers, on 4 Ps.
cd /work/main
out=/tmp/ab24/toolprocs; mkdir -p $out
tool=/tmp/clH24b
for round in 1 2; do
  $tool --creditsd /tmp/cdT4p4 --seed-cache /tmp/seedcache-h16 --settle 30s --scenario read --users 1000000 --lots 10000000 --expired 1000000 --runs 2 --duration 15s --json $out/tool2-$round.json > $out/tool2-$round.txt 2>&1
  GOMAXPROCS=4 $tool --creditsd /tmp/cdT4 --seed-cache /tmp/seedcache-h16 --settle 30s --scenario read --users 1000000 --lots 10000000 --expired 1000000 --runs 2 --duration 15s --json $out/tool4-$round.json > $out/tool4-$round.txt 2>&1
done
echo done
