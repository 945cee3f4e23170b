#!/usr/bin/env bash
# Layer unpack throughput: brig's unpacker (libcontainer example unpack_layer, release build)
# against a single-threaded `gzip -d` / `zstd -d` of the same blob and GNU tar extracting it.
# The layer is a tar of SRC (default /usr, capped at ~MAX_MB of files), built once.
#   hack/unpack-bench.sh [SRC] [MAX_MB]
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:-/usr}
max_mb=${2:-250}
work=$(mktemp -d /var/tmp/brig-unpack-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
cargo build --release --locked -p libcontainer --example unpack_layer >/dev/null 2>&1
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/unpack_layer

# A file list up to max_mb of regular-file data (plus every dir and symlink on the way).
python3 - "$src" "$max_mb" >"$work/list" <<'PY'
import os, sys
src, cap = sys.argv[1], int(sys.argv[2]) << 20
total = 0
for root, dirs, files in os.walk(src):
    dirs.sort(); files.sort()
    print(os.path.relpath(root, "/"))
    for f in files:
        p = os.path.join(root, f)
        try:
            st = os.lstat(p)
        except OSError:
            continue
        if total + st.st_size > cap:
            sys.exit(0)
        total += st.st_size
        print(os.path.relpath(p, "/"))
PY
tar -C / --no-recursion -T "$work/list" -cf "$work/layer.tar" 2>/dev/null || true
diff_id=sha256:$(sha256sum <"$work/layer.tar" | cut -c1-64)
gzip -c -6 "$work/layer.tar" >"$work/layer.tar.gz"
zstd -q -c -3 "$work/layer.tar" >"$work/layer.tar.zst"
mb=$(($(stat -c %s "$work/layer.tar") / 1000000))
echo "layer: $mb MB tar, $(($(stat -c %s "$work/layer.tar.gz") / 1000000)) MB gzip, $(($(stat -c %s "$work/layer.tar.zst") / 1000000)) MB zstd, $(wc -l <"$work/list") entries"

t() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
rate() { echo "scale=1; $mb / $1" | bc; }
sync
g=$(t gzip -d -c "$work/layer.tar.gz"); echo "gzip -d:            ${g}s  $(rate "$g") MB/s"
z=$(t zstd -q -d -c "$work/layer.tar.zst"); echo "zstd -d:            ${z}s  $(rate "$z") MB/s"
mkdir "$work/gt"
x=$(t tar -C "$work/gt" --numeric-owner -xzf "$work/layer.tar.gz"); echo "tar -xzf (GNU):     ${x}s  $(rate "$x") MB/s"
rm -rf "$work/gt"
for kind in "tar:layer.tar:application/vnd.oci.image.layer.v1.tar" \
  "gzip:layer.tar.gz:application/vnd.oci.image.layer.v1.tar+gzip" \
  "zstd:layer.tar.zst:application/vnd.oci.image.layer.v1.tar+zstd"; do
  IFS=: read -r name file media <<<"$kind"
  sync
  echo -n "brig unpack ($name): "
  "$bin" "$work/rootfs-$name" "$media:$diff_id:$work/$file"
  rm -rf "$work/rootfs-$name"
done
