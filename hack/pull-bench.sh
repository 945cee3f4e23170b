#!/usr/bin/env bash
# Benchmark (not a test; issue 15): pull and unpack a ~250 MB, 3-layer gzip image from a local
# registry with `brig pull REF BUNDLE`, and with `skopeo copy docker://REF oci:DIR` +
# `umoci unpack` (Debian's), alternated round by round (the machine is shared: read the
# ratios). Also a raw download of the blobs (curl) and a single-threaded `gzip -d` of the
# layers, as floors. Run as root (umoci unpack and brig keep the layers' owners).
#
#   hack/pull-bench.sh [--quick] [ROUNDS]     ROUNDS default 5; --quick: a ~15 MB image, 1 round
#
# The image is built offline from files Debian's packages installed under /usr (three layers:
# libraries, /usr/share, binaries), tar --sort=name, gzip -6; it is served by
# `docker-registry` (apt-get install -y docker-registry skopeo umoci) on 127.0.0.1, a free
# port, its own storage, stopped at exit. Every round starts from an empty store / OCI dir and
# an absent bundle. BRIG: the binary (default target/release/brig, not built here). BRIG_BASE:
# another brig binary (say main's) run in the same rounds, for a before/after in one run.
set -euo pipefail
cd "$(dirname "$0")/.."

quick= rounds=5
for arg in "$@"; do
  case $arg in
    --quick) quick=1 rounds=1 ;;
    [0-9]*) rounds=$arg ;;
    *) echo "usage: hack/pull-bench.sh [--quick] [ROUNDS]" >&2; exit 2 ;;
  esac
done
brig=${BRIG:-$PWD/target/release/brig}
[ -x "$brig" ] || { echo "pull-bench: no $brig (hack/build.sh first)" >&2; exit 1; }
for tool in docker-registry skopeo umoci curl gzip; do
  command -v $tool >/dev/null || { echo "pull-bench: $tool missing (apt-get install -y docker-registry skopeo umoci curl)" >&2; exit 1; }
done

work=$(mktemp -d /var/tmp/brig-pull-bench.XXXXXX)
registry_pid=
cleanup() {
  [ -z "$registry_pid" ] || { kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT

# 1. The image: three layers of /usr's files, capped (MB of file data each).
if [ -n "$quick" ]; then caps=(8 4 3); else caps=(120 80 50); fi
python3 - "$work" "${caps[@]}" <<'PY'
import hashlib, json, os, subprocess, sys
work, caps = sys.argv[1], [int(c) << 20 for c in sys.argv[2:]]
sources = [["usr/lib/x86_64-linux-gnu"], ["usr/share"], ["usr/bin", "usr/sbin"]]
blobs = os.path.join(work, "layout/blobs/sha256")
os.makedirs(blobs)
def put(data_path=None, data=None):
    h = hashlib.sha256()
    if data is None:
        with open(data_path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        size = os.path.getsize(data_path)
        os.rename(data_path, os.path.join(blobs, h.hexdigest()))
    else:
        h.update(data)
        size = len(data)
        open(os.path.join(blobs, h.hexdigest()), "wb").write(data)
    return "sha256:" + h.hexdigest(), size
layers, diff_ids, total = [], [], 0
for i, (dirs, cap) in enumerate(zip(sources, caps)):
    used, names = 0, []
    for d in dirs:
        for root, subdirs, files in os.walk("/" + d):
            subdirs.sort(); files.sort()
            names.append(os.path.relpath(root, "/"))
            for f in files:
                p = os.path.join(root, f)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if used + st.st_size > cap:
                    continue
                used += st.st_size
                names.append(os.path.relpath(p, "/"))
    lst = os.path.join(work, f"list{i}")
    open(lst, "w").write("\n".join(names) + "\n")
    tar = os.path.join(work, f"layer{i}.tar")
    subprocess.run(["tar", "-C", "/", "--no-recursion", "--sort=name", "--numeric-owner",
                    "--format=pax", "-T", lst, "-cf", tar], check=True, stderr=subprocess.DEVNULL)
    h = hashlib.sha256()
    with open(tar, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    diff_ids.append("sha256:" + h.hexdigest())
    total += os.path.getsize(tar)
    subprocess.run(["gzip", "-6", "-n", tar], check=True)
    digest, size = put(tar + ".gz")
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                   "digest": digest, "size": size})
config = {"architecture": "amd64", "os": "linux",
          "config": {"Cmd": ["/usr/bin/true"], "Env": ["PATH=/usr/bin:/bin"]},
          "rootfs": {"type": "layers", "diff_ids": diff_ids}}
cdigest, csize = put(data=json.dumps(config).encode())
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": cdigest, "size": csize}, "layers": layers}
mdigest, msize = put(data=json.dumps(manifest).encode())
json.dump({"schemaVersion": 2, "manifests": [{
    "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdigest, "size": msize,
    "annotations": {"org.opencontainers.image.ref.name": "bench"}}]},
    open(os.path.join(work, "layout/index.json"), "w"))
open(os.path.join(work, "layout/oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
open(os.path.join(work, "sizes"), "w").write(
    f"{total} {sum(l['size'] for l in layers)}\n" + "\n".join(l["digest"] for l in layers) + "\n")
PY
read -r tar_bytes gz_bytes < <(head -1 "$work/sizes")
mapfile -t digests < <(tail -n +2 "$work/sizes")
tar_mb=$(echo "scale=1; $tar_bytes / 1000000" | bc)
gz_mb=$(echo "scale=1; $gz_bytes / 1000000" | bc)
echo "image: 3 gzip layers, $tar_mb MB of tar, $gz_mb MB compressed"

# 2. The registry, and the image pushed to it.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/registry"
cat >"$work/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry/storage
http:
  addr: 127.0.0.1:$port
EOF
docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break
  sleep 0.1
done
skopeo copy --quiet --dest-tls-verify=false "oci:$work/layout:bench" "docker://127.0.0.1:$port/bench:v1"
ref=127.0.0.1:$port/bench:v1

# 3. Rounds, alternated.
t() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }; e=$(date +%s%N); echo $(((e - s) / 1000000)); }
# Every run writes into fresh directories and nothing is removed before the end: this host's
# root filesystem is ext4 without a journal, where creating files soon after deleting many
# makes the kernel skip the recently deleted inodes one by one (ialloc.c's recently_deleted),
# so removing the last round's ~10k-entry tree first made each round slower than the one
# before (for every tool alike: 0.8 -> 6.1 s for brig in four rounds, 3.2 -> 8.1 s for umoci).
brig_base=${BRIG_BASE:-}
brig_round() {
  local bin=${1:-$brig} run
  run=$(mktemp -d "$work/run.XXXXXX")
  [ -n "${1:-}" ] || echo "$run" >"$work/last-brig"
  t "$bin" pull --quiet --plain-http --store "$run/store" "$ref" "$run/bundle"
}
skopeo_umoci_round() {
  local a b run
  run=$(mktemp -d "$work/run.XXXXXX")
  echo "$run" >"$work/last-umoci"
  a=$(t skopeo copy --quiet --src-tls-verify=false "docker://$ref" "oci:$run/oci:bench")
  b=$(t umoci unpack --image "$run/oci:bench" "$run/bundle")
  echo "$a $b"
}
download_round() {
  local s e
  s=$(date +%s%N)
  for d in "${digests[@]}"; do curl -fs "http://127.0.0.1:$port/v2/bench/blobs/$d" -o /dev/null; done
  e=$(date +%s%N); echo $(((e - s) / 1000000))
}
gunzip_round() {
  local s e
  s=$(date +%s%N)
  for d in "${digests[@]}"; do gzip -d -c "$work/layout/blobs/sha256/${d#sha256:}" >/dev/null; done
  e=$(date +%s%N); echo $(((e - s) / 1000000))
}
: >"$work/times"
for r in $(seq "$rounds"); do
  o=0
  # The base brig, if any, on the other side of skopeo+umoci from brig.
  [ -z "$brig_base" ] || [ $((r % 2)) = 1 ] || o=$(brig_round "$brig_base")
  if [ $((r % 2)) = 1 ]; then
    b=$(brig_round); read -r s u < <(skopeo_umoci_round)
  else
    read -r s u < <(skopeo_umoci_round); b=$(brig_round)
  fi
  [ -z "$brig_base" ] || [ $((r % 2)) = 0 ] || o=$(brig_round "$brig_base")
  d=$(download_round); g=$(gunzip_round)
  echo "$b $s $u $d $g $o" >>"$work/times"
  echo "round $r: brig $b ms, skopeo $s ms + umoci $u ms, download $d ms, gzip -d $g ms${brig_base:+, base brig $o ms}" >&2
done
# Both made the same tree (spot check: the file count).
nb=$(find "$(cat "$work/last-brig")/bundle/rootfs" | wc -l)
nu=$(find "$(cat "$work/last-umoci")/bundle/rootfs" | wc -l)
[ "$nb" = "$nu" ] || echo "warning: brig's rootfs has $nb entries, umoci's $nu" >&2

python3 - "$work/times" "$tar_mb" "$gz_mb" <<'PY'
import statistics, sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1])]
tar_mb, gz_mb = float(sys.argv[2]), float(sys.argv[3])
cols = ["brig pull", "skopeo copy", "umoci unpack", "download (curl)", "gzip -d (1 thread)"]
def st(xs):
    xs = sorted(xs); return xs[0], statistics.median(xs), xs[-1]
print(f"\n{len(rows)} rounds, alternated; wall ms min / median / max")
for i, c in enumerate(cols):
    lo, med, hi = st([r[i] for r in rows])
    print(f"{c:>20}  {lo:8.0f} / {med:8.0f} / {hi:8.0f}   {gz_mb / med * 1000:7.1f} MB/s gz  {tar_mb / med * 1000:7.1f} MB/s tar")
su = [r[1] + r[2] for r in rows]
lo, med, hi = st(su)
print(f"{'skopeo+umoci':>20}  {lo:8.0f} / {med:8.0f} / {hi:8.0f}   {gz_mb / med * 1000:7.1f} MB/s gz  {tar_mb / med * 1000:7.1f} MB/s tar")
ratios = [r[0] / (r[1] + r[2]) for r in rows]
print("brig / (skopeo+umoci), same round: %.2f / %.2f / %.2f   (target <= 0.3)" % st(ratios))
if any(r[5] for r in rows):
    lo, med, hi = st([r[5] for r in rows])
    print(f"{'brig (BRIG_BASE)':>20}  {lo:8.0f} / {med:8.0f} / {hi:8.0f}   {gz_mb / med * 1000:7.1f} MB/s gz  {tar_mb / med * 1000:7.1f} MB/s tar")
    print("BRIG_BASE / (skopeo+umoci), same round: %.2f / %.2f / %.2f" % st([r[5] / (r[1] + r[2]) for r in rows]))
    print("brig / BRIG_BASE, same round: %.2f / %.2f / %.2f" % st([r[0] / r[5] for r in rows]))
PY
