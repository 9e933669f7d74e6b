#!/usr/bin/env bash
# One server binary, 368207f (/tmp/cdB21), and its tool (/tmp/clB21), on copies of two seeds that
# differ only in entries' foreign key to lots: /tmp/seedcache-f, made with migration 0013
# (lot_id REFERENCES lots (lot_id)), and /tmp/seedcache-g, the same file migrated to 0014 by
# e6f73de ((user_id, lot_id) REFERENCES lots (user_id, lot_id)). 368207f's tool and server know
# no 0014, so neither migrates either copy: the starts differ in the schema's key alone.
# Alternating starts, the sweep beside 32 spending clients: rounds 1-3 at 06:32, then
# ROUNDS="4 5 6" at 07:38 (ROUNDS names the rounds to run; 1 2 3 by default).
set -u
out=$(dirname "$0")
for round in ${ROUNDS:-1 2 3}; do
  for spec in k0013=/tmp/seedcache-f k0014=/tmp/seedcache-g; do
    label=${spec%%=*} cache=${spec#*=}
    echo "round $round: $label ($cache) $(date -u +%H:%M:%S)" >&2
    /tmp/clB21 --creditsd /tmp/cdB21 --seed-cache "$cache" --settle 30s --scenario sweep \
      --users 1000000 --lots 10000000 --expired 1000000 --runs 2 --duration 15s \
      --json "$out/$label-$round.json" > "$out/$label-$round.txt" 2>&1
  done
done
