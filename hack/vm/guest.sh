#!/bin/busybox sh
# Stage 2 of the cgroup v2 VM (pid 1, run by hack/vm/init after switch_root into a tmpfs
# overlay of the host's /). Mounts what a host has, cgroup2 alone at /sys/fs/cgroup with every
# controller enabled, runs the job hack/vm-test.sh wrote and powers off.
#   /dev/ttyS0  kernel console and this script's own messages
#   /dev/ttyS1  the job's stdout and stderr, raw (byte-exact)
#   /dev/ttyS2  status lines for the host: "booted SECONDS", then "exit STATUS" or "error TEXT"
bb=/bin/busybox
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root

status() { echo "$*" >/dev/ttyS2; }
fail() {
  echo "vm-guest: $*" >&2
  status "error $*"
  $bb stty -F /dev/ttyS2 raw -echo
  $bb poweroff -f
}
arg() { # the value of NAME=VALUE on the kernel command line
  for word in $($bb cat /proc/cmdline); do
    case "$word" in "$1="*) echo "${word#*=}" ;; esac
  done
}

# vm.systemd=1: systemd (the host's, Debian's) becomes PID 1 with a lean boot: its default
# target is vm.target, which starts only dbus (when installed) and vm-job.service; units that
# need hardware, a network or a real disk are masked. vm-job.service (Delegate=yes) runs the
# job as the harness does without systemd, then reports and powers off.
exec_systemd() {
  local units=/etc/systemd/system wrapper=/run/vm/systemd-job.sh u
  $bb mkdir -p $units /run/vm
  for u in apparmor.service systemd-pstore.service systemd-timesyncd.service \
    systemd-binfmt.service proc-sys-fs-binfmt_misc.automount systemd-firstboot.service \
    systemd-machine-id-commit.service systemd-random-seed.service systemd-repart.service \
    systemd-pcrphase.service systemd-pcrphase-sysinit.service systemd-journal-flush.service \
    systemd-update-utmp.service systemd-sysusers.service systemd-modules-load.service \
    kmod-static-nodes.service sys-kernel-config.mount sys-kernel-debug.mount \
    sys-kernel-tracing.mount sys-fs-fuse-connections.mount dev-hugepages.mount \
    cryptsetup.target integritysetup.target veritysetup.target \
    systemd-ask-password-console.path systemd-ask-password-wall.path \
    systemd-journald.service systemd-journald.socket systemd-journald-dev-log.socket \
    systemd-journald-audit.socket systemd-remount-fs.service systemd-fsck-root.service \
    getty@tty1.service serial-getty@ttyS0.service serial-getty@ttyS1.service \
    serial-getty@ttyS2.service systemd-logind.service systemd-networkd.service \
    networking.service systemd-resolved.service systemd-udevd.service \
    systemd-udev-trigger.service systemd-tmpfiles-clean.timer tmp.mount; do
    $bb ln -sf /dev/null "$units/$u"
  done
  # No status lines on the console (it is shown on failure).
  $bb mkdir -p /etc/systemd/system.conf.d
  printf '[Manager]\nShowStatus=no\n' >/etc/systemd/system.conf.d/vm.conf
  local deps=
  [ ! -x /usr/bin/dbus-daemon ] || deps="dbus.socket dbus.service"
  $bb cat >$units/vm.target <<EOT
[Unit]
Description=brig VM job
Requires=vm-job.service
After=vm-job.service
AllowIsolate=yes
EOT
  $bb cat >$units/vm-job.service <<EOT
[Unit]
Description=brig VM job
DefaultDependencies=no
Wants=$deps
After=$deps
[Service]
Type=oneshot
Delegate=yes
StandardInput=null
StandardOutput=null
StandardError=null
ExecStart=$bb sh $wrapper $1
EOT
  # The job's output and status as without systemd: raw ports, one status line.
  $bb cat >$wrapper <<'EOT'
bb=/bin/busybox
echo "booted $($bb cut -d' ' -f1 /proc/uptime)" >/dev/ttyS2
set -o pipefail
/usr/bin/setsid --wait /bin/bash "$1" </dev/null 2>&1 | $bb cat >/dev/ttyS1
code=$?
$bb stty -F /dev/ttyS1 raw -echo
echo "exit $code" >/dev/ttyS2
$bb stty -F /dev/ttyS2 raw -echo
$bb poweroff -f
EOT
  # systemd.* of the kernel's command line on its own too: a systemd that believes it is in
  # a container reads its own (systemd.unified_cgroup_hierarchy=0 for --cgroup-v1).
  # shellcheck disable=SC2046
  exec /lib/systemd/systemd --unit=vm.target $(for w in $($bb cat /proc/cmdline); do
    case $w in systemd.*) echo "$w" ;; esac
  done)
}

# Both ports raw first: without it the tty layer turns \n into \r\n.
for port in /dev/ttyS1 /dev/ttyS2; do
  $bb stty -F $port raw -echo || fail "stty $port"
done

$bb mkdir -p /dev/pts /dev/shm
$bb mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts || fail "mount /dev/pts"
$bb ln -sf pts/ptmx /dev/ptmx
$bb mount -t tmpfs -o mode=1777 tmpfs /dev/shm || fail "mount /dev/shm"
$bb mount -t tmpfs -o mode=0755 tmpfs /run || fail "mount /run"
systemd=$(arg vm.systemd)
# Under systemd (vm.systemd=1) the cgroup file systems are systemd's to mount.
if [ "$systemd" != 1 ]; then
  $bb mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || fail "mount cgroup2"
  for controller in $($bb cat /sys/fs/cgroup/cgroup.controllers); do
    echo "+$controller" >/sys/fs/cgroup/cgroup.subtree_control || fail "enable the $controller controller"
  done
fi
$bb hostname brig-vm
$bb ip link set lo up || fail "bring up lo"

# The kernel's modules (extracted on the host) at their usual place, and a modprobe for the
# kernel's requests: the host may have no kmod.
kver=$($bb uname -r)
modules=$(arg vm.modules)
if [ -n "$modules" ]; then
  $bb mkdir -p "/lib/modules/$kver"
  $bb mount --bind "$modules" "/lib/modules/$kver" || fail "bind the kernel's modules"
  $bb mkdir -p /run/vm
  $bb ln -s $bb /run/vm/modprobe
  echo /run/vm/modprobe >/proc/sys/kernel/modprobe
fi

# /tmp on the scratch disk (/dev/vda, made by the host); noinit_itable: nobody else uses it.
for m in virtio_blk crc32c_generic ext4; do
  $bb modprobe $m || fail "modprobe $m"
done
# The repository (and with it the job) may itself live under the host's /tmp (a CI clone):
# keep the host's /tmp reachable and bring that entry back over the scratch disk.
$bb mkdir -p /run/vm/host-tmp
$bb mount --bind /tmp /run/vm/host-tmp || fail "keep the host's /tmp"
$bb mount -t ext4 -o noinit_itable /dev/vda /tmp || fail "mount /dev/vda on /tmp"
$bb chmod 1777 /tmp
repo=$(arg vm.stage2)
repo=${repo%/hack/vm/guest.sh}
case $repo in
  /tmp/?*)
    top=${repo#/tmp/}
    top=${top%%/*}
    $bb mkdir -p "/tmp/$top"
    $bb mount --bind "/run/vm/host-tmp/$top" "/tmp/$top" || fail "bind /tmp/$top back"
    ;;
esac

# Where the job runs: the root cgroup unless vm.cgroup= names one (created below the root,
# with every controller enabled on the way down).
cgroup=$(arg vm.cgroup)
if [ -n "$cgroup" ]; then
  dir=/sys/fs/cgroup
  for part in $(echo "$cgroup" | $bb tr / ' '); do
    if [ "$dir" != /sys/fs/cgroup ]; then
      for controller in $($bb cat "$dir/cgroup.controllers"); do
        echo "+$controller" >"$dir/cgroup.subtree_control" || fail "enable $controller in $dir"
      done
    fi
    dir=$dir/$part
    $bb mkdir -p "$dir" || fail "create the cgroup $dir"
  done
fi

job=$(arg vm.job)
[ -r "$job" ] || fail "no job script (vm.job=$job)"

if [ "$systemd" = 1 ]; then
  exec_systemd "$job"
fi
status "booted $($bb cut -d' ' -f1 /proc/uptime)"
# A session of its own without a controlling terminal, stdin empty, output a pipe (not the
# serial tty, which would turn on colours and line buffering): like CI.
set -o pipefail
/usr/bin/setsid --wait $bb sh -c '
  [ -z "$1" ] || echo $$ >"/sys/fs/cgroup$1/cgroup.procs" || exit 125
  exec /bin/bash "$2"' vm-job "$cgroup" "$job" </dev/null 2>&1 | $bb cat >/dev/ttyS1
code=$?

# Leftovers die; the stty waits until the port has sent everything (TCSADRAIN).
$bb kill -KILL -1 2>/dev/null
$bb stty -F /dev/ttyS1 raw -echo
status "exit $code"
$bb stty -F /dev/ttyS2 raw -echo
$bb poweroff -f
