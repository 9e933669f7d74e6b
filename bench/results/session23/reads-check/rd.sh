#!/usr/bin/env bash
out=$1; mkdir -p $out
for r in 1 2; do
  for side in C A D; do
    case $side in
      C) tool=/tmp/clH23 bin=/tmp/cdH23 ;;   # 56f27dc tool+server, copy stays at 0015
      A) tool=/tmp/clF23 bin=/tmp/cdF23 ;;   # 177bf05 tool+server, the tool migrates the copy to 0016
      D) tool=/tmp/clH23 bin=/tmp/cdF23 ;;   # 56f27dc tool (copy at 0015), 177bf05 server migrates at start
    esac
    echo "round $r $side $(date +%T)" >&2
    $tool --creditsd $bin --seed-cache /tmp/seedcache-h15 --settle 30s --scenario read --users 1000000 --lots 10000000 --expired 1000000 \
      --runs 2 --duration 15s --json $out/$side-$r.json > $out/$side-$r.txt 2>&1
  done
done
