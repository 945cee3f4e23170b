#!/usr/bin/env bash
# Build an OCI image layout of busybox, offline, from Debian's busybox-static.
#   hack/make-image.sh DIR [TAG]     -> DIR/{oci-layout,index.json,blobs/sha256/...}
# One gzip layer (the rootfs hack/make-rootfs.sh makes, plus a user `brig`), a real image
# config (Entrypoint, Cmd, Env, WorkingDir, User, Labels, StopSignal) and a manifest, all
# addressed by sha256sum digests; TAG (default `latest`) is the manifest's
# org.opencontainers.image.ref.name in index.json, so the image is `oci:DIR:TAG`.
# DIR must not exist or be empty. The output is reproducible: same busybox, same digests
# (mtimes and `created` come from SOURCE_DATE_EPOCH, default 0).
# Needs: busybox-static, tar, gzip, sha256sum. Check it with `skopeo inspect oci:DIR:TAG`.
set -euo pipefail

dir=${1:?usage: make-image.sh DIR [TAG]}
tag=${2:-latest}
here=$(cd "$(dirname "$0")" && pwd)
epoch=${SOURCE_DATE_EPOCH:-0}

if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
  echo "make-image: $dir exists and is not empty" >&2
  exit 1
fi
mkdir -p "$dir/blobs/sha256"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

BRIG='' "$here/make-rootfs.sh" "$work" >/dev/null
rootfs=$work/rootfs
echo 'brig:x:1000:1000:brig:/home/brig:/bin/sh' >>"$rootfs/etc/passwd"
echo 'brig:x:1000:' >>"$rootfs/etc/group"
sed -i 's/^users:x:100:$/users:x:100:brig/' "$rootfs/etc/group"
mkdir -p "$rootfs/home/brig"

# A deterministic tar: sorted names, owned by root but for brig's home (whoever builds it),
# fixed mtimes, no atime/ctime; no gzip name or time stamp.
tar_opts=(--sort=name --numeric-owner --mtime="@$epoch" --format=pax
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime)
tar "${tar_opts[@]}" --owner=0 --group=0 --exclude=./home/brig \
  -C "$rootfs" -cf "$work/layer.tar" .
tar "${tar_opts[@]}" --owner=1000 --group=1000 -C "$rootfs" -rf "$work/layer.tar" ./home/brig
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -c "$work/layer.tar" >"$work/layer.tar.gz"

# Move a file into blobs/sha256 under its digest; prints "DIGEST SIZE".
put_blob() {
  local digest size
  digest=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  mv "$1" "$dir/blobs/sha256/$digest"
  echo "$digest $size"
}

read -r layer_digest layer_size < <(put_blob "$work/layer.tar.gz")

arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
# `|| true`: head closes the pipe early, and busybox's SIGPIPE fails the pipeline (pipefail).
version=$(/bin/busybox --help 2>/dev/null | head -1 | sed -n 's/^BusyBox v\([^ ]*\).*/\1/p' || true)
cat >"$work/config.json" <<EOF
{
  "created": "$created",
  "author": "brig hack/make-image.sh",
  "architecture": "$arch",
  "os": "linux",
  "config": {
    "User": "brig",
    "Env": [
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "GREETING=hello from brig"
    ],
    "Entrypoint": ["/bin/busybox"],
    "Cmd": ["sh"],
    "WorkingDir": "/home/brig",
    "Labels": {
      "org.opencontainers.image.title": "busybox",
      "org.opencontainers.image.version": "${version:-unknown}",
      "org.opencontainers.image.description": "busybox-static from Debian, built offline by brig's hack/make-image.sh"
    },
    "StopSignal": "SIGTERM"
  },
  "rootfs": {
    "type": "layers",
    "diff_ids": ["sha256:$diff_id"]
  },
  "history": [
    {"created": "$created", "created_by": "hack/make-image.sh: busybox-static and /etc"}
  ]
}
EOF
read -r config_digest config_size < <(put_blob "$work/config.json")

cat >"$work/manifest.json" <<EOF
{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {
    "mediaType": "application/vnd.oci.image.config.v1+json",
    "digest": "sha256:$config_digest",
    "size": $config_size
  },
  "layers": [
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
      "digest": "sha256:$layer_digest",
      "size": $layer_size
    }
  ]
}
EOF
read -r manifest_digest manifest_size < <(put_blob "$work/manifest.json")

cat >"$dir/index.json" <<EOF
{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "sha256:$manifest_digest",
      "size": $manifest_size,
      "platform": {"architecture": "$arch", "os": "linux"},
      "annotations": {"org.opencontainers.image.ref.name": "$tag"}
    }
  ]
}
EOF
echo '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
echo "sha256:$manifest_digest"
