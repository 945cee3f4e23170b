#!/usr/bin/env bash
# Regenerate hack/symbol-order.txt (issue 18): the functions a container's start runs, which
# build.rs has the linker put first in .text so that the few pages they need are the pages
# the kernel maps (it maps 64 KB around every fault: scattered, they made most of the 6 MB
# of text resident). Run as root after changes to the start path; a stale list only costs RSS.
#
# It builds brig as hack/build.sh does, with the linker's map (BRIG_LINK_MAP), single-steps
# each command of a container's life under hack/symbol-order-tracer.c (ptrace, every process
# and re-exec; slow: minutes), and names the functions it saw from the map.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/brig-symbol-order.XXXXXX)
bin=$PWD/target/release/brig
cleanup() {
  "$bin" --root "$work/state" delete --force so-run >/dev/null 2>&1 || true
  "$bin" --root "$work/state" delete --force so-life >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
BRIG_LINK_MAP=$work/brig.map hack/build.sh
cc -O2 -o "$work/tracer" hack/symbol-order-tracer.c
cp "$bin" "$work/brig-traced"
hack/make-rootfs.sh "$work/rb" >/dev/null
mkdir -p "$work/b"
"$bin" spec --bundle "$work/b"
jq --arg root "$work/rb/rootfs" --arg cg "brig-symbol-order-$$" \
  '.root.path = $root | .process.terminal = false | .process.args = ["/bin/sleep", "1000"]
   | .linux.cgroupsPath = $cg' "$work/b/config.json" > "$work/b/c"
mv "$work/b/c" "$work/b/config.json"
trace() {
  TARGET=brig-traced OUT=$work/trace.$1 "$work/tracer" "$work/brig-traced" --root "$work/state" "$@" \
    >/dev/null 2>>"$work/tracer.log"
}
# The create's tracer follows init until it execs the container's process, after `start`.
trace create -b "$work/b" so-life &
traced_create=$!
until "$bin" --root "$work/state" state so-life 2>/dev/null | grep -q '"created"'; do
  kill -0 "$traced_create" 2>/dev/null || { echo "symbol-order: create failed" >&2; exit 1; }
  sleep 1
done
trace start so-life
wait "$traced_create"
trace state so-life
trace exec so-life /bin/true
trace kill so-life KILL
trace delete --force so-life
jq '.process.args = ["/bin/true"]' "$work/b/config.json" > "$work/b/c" && mv "$work/b/c" "$work/b/config.json"
trace run -b "$work/b" so-run
hack/symbol-order.py "$work/brig.map" "$work"/trace.* > "$work/order"
mv "$work/order" hack/symbol-order.txt
