#!/usr/bin/env bash
# build.sh builds creditsd at a commit with C SQLite in place of the pure-Go
# modernc.org/sqlite, to measure what the design card's driver costs. The
# product never builds this way: the card rules out cgo (README,
# "Dependencies"). BENCHMARKS.md "Session 14" has the numbers.
#
#   bench/cgosqlite/build.sh OUT [COMMIT]      # COMMIT defaults to HEAD
#   KEEP=DIR bench/cgosqlite/build.sh OUT      # and keep the worktree in DIR
#
# In a kept worktree the store's benchmarks run on C SQLite too:
#   cd DIR && CGO_CFLAGS="-O2 -g -DSQLITE_DEFAULT_MEMSTATUS=0" go test -run X -count 2 \
#     -bench 'BenchmarkSpend$|BenchmarkGrant$|BenchmarkEntitlementRead$|BenchmarkExpireLots$' ./entitlements/sqlite/
# Remove DIR after with `git worktree remove --force DIR`.
#
# It checks COMMIT out into a scratch worktree, applies db.patch (the
# driver github.com/mattn/go-sqlite3 v1.14.53, which bundles the same
# SQLite 3.54.1 as modernc v1.62.0, with the same pragmas) and builds with
# cgo (db.patch is made against entitlements/sqlite/db.go at 1a100a1; the
# store's tests of the pragmas pass with it). Two changes make the C build
# comparable with modernc's:
#   - SQLITE_DEFAULT_MEMSTATUS=0, as modernc compiles it: with memory
#     statistics on, every allocation takes a global mutex;
#   - mattn.patch: mattn clears a statement's bindings before binding them
#     again, which expires any statement whose plan used a bound value; the
#     one that reads a user's row, tier and allowance was parsed again on
#     every run, and reads and spends were twice as slow as on modernc.
# The binary says `creditsd cgosqlite+COMMIT` to `creditsd version`, which
# the load tool's report prints. It needs gcc; the first build takes ~1 min.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
	sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0" # the comment above
	exit 2
fi
out=$(realpath -m "$1")
here=$(cd "$(dirname "$0")" && pwd)
root=$(git -C "$here" rev-parse --show-toplevel)
commit=$(git -C "$root" rev-parse --short=12 "${2:-HEAD}")

src=$(realpath -m "${KEEP:-$(mktemp -d)/src}")
cleanup() {
	[[ -n ${KEEP:-} ]] && return
	git -C "$root" worktree remove --force "$src" 2>/dev/null || true
	rm -rf "$(dirname "$src")"
}
trap cleanup EXIT

git -C "$root" worktree add -q --detach "$src" "$commit"
cd "$src"
git apply "$here/db.patch"
go get github.com/mattn/go-sqlite3@v1.14.53
cp -r "$(go list -m -f '{{.Dir}}' github.com/mattn/go-sqlite3)" .mattn # a module of its own: not built as ours
chmod -R u+w .mattn
patch -s -d .mattn -p1 <"$here/mattn.patch"
go mod edit -replace github.com/mattn/go-sqlite3=./.mattn
CGO_ENABLED=1 CGO_CFLAGS="-O2 -g -DSQLITE_DEFAULT_MEMSTATUS=0" \
	go build -buildvcs=false -ldflags "-X main.version=cgosqlite+$commit" -o "$out" ./cmd/creditsd
echo "built $out: creditsd $commit on C SQLite" >&2
