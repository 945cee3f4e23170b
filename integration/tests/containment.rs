//! The container's filesystem view cannot reach past what it was given: no mount namespace
//! means no remount of the caller's, procfs and sysfs only on real directories, `--no-pivot`
//! hides the outer procfs, and bind-mount propagation keeps the peer group it was asked for.

use std::process::{Command, Output};

use integration::*;
use serde_json::json;

/// Run `script` with `sh -eu` in a new mount namespace of its own (all mounts private, so
/// nothing reaches the test's namespace), in the bundle directory, with `$BRIG` set to brig
/// and its state root.
fn in_private_mount_namespace(b: &Bundle, script: &str) -> Output {
    let brig = format!("{} --root {}", brig_binary().display(), b.root.display());
    output_via_files(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-euc", script])
            .env("BRIG", brig)
            .current_dir(&b.dir)
            .stdin(std::process::Stdio::null()),
        &b.dir,
    )
}

/// The mountinfo lines of `text` without their mount ids (field 1 and 2 change with every
/// new mount, the rest says what is mounted where and how).
fn mounts(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.splitn(3, ' ').nth(2).unwrap_or("").to_string())
        .collect()
}

#[test]
fn without_a_mount_namespace_the_callers_root_and_mounts_are_untouched() {
    let mut b = Bundle::new("nomntns");
    std::fs::write(b.rootfs().join("marker"), "in the rootfs\n").unwrap();
    b.edit(|c| {
        c["process"]["args"] = json!([
            "sh",
            "-c",
            "cat /marker; touch /new 2>/dev/null || echo read-only"
        ]);
        c["root"]["readonly"] = json!(true);
        let namespaces: Vec<_> = c["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|ns| ns["type"] != "mount")
            .cloned()
            .collect();
        c["linux"]["namespaces"] = json!(namespaces);
        // runc refuses these without a mount namespace too.
        c["linux"]
            .as_object_mut()
            .unwrap()
            .retain(|k, _| k != "maskedPaths" && k != "readonlyPaths");
    });
    let id = unique_id("nomntns");
    let out = in_private_mount_namespace(
        &b,
        &format!(
            "mount --make-rshared /
             readlink /proc/self/root
             cat /proc/self/mountinfo
             echo ==== run
             $BRIG run {id}
             echo ==== after
             readlink /proc/self/root
             cat /proc/self/mountinfo"
        ),
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{}{}", text, stderr(&out));
    let (before, rest) = text.split_once("==== run\n").unwrap();
    let (run, after) = rest.split_once("==== after\n").unwrap();
    assert_eq!(
        run, "in the rootfs\nread-only\n",
        "the container runs chrooted in its read-only rootfs"
    );
    let (root_before, info_before) = before.split_once('\n').unwrap();
    let (root_after, info_after) = after.split_once('\n').unwrap();
    assert_eq!(root_before, "/");
    assert_eq!(root_after, "/", "the caller's root was changed");
    let (before, after) = (mounts(info_before), mounts(info_after));
    // Every mount the caller had is still there, with the same options and propagation.
    for line in &before {
        assert!(
            after.contains(line),
            "changed or gone: {line}\nafter:\n{info_after}"
        );
    }
    // What was added are the container's own mounts, below its rootfs only.
    let rootfs = b.rootfs().to_string_lossy().into_owned();
    for line in after.iter().filter(|l| !before.contains(l)) {
        let point = line.split(' ').nth(2).unwrap();
        assert!(
            point == rootfs || point.starts_with(&format!("{rootfs}/")),
            "a mount outside the rootfs: {line}"
        );
    }
}

#[test]
fn proc_or_sys_on_a_symlink_is_refused() {
    for dir in ["proc", "sys"] {
        let b = Bundle::with_script("symproc", "true");
        let path = b.rootfs().join(dir);
        std::fs::remove_dir(&path).unwrap();
        std::os::unix::fs::symlink("/symlink", &path).unwrap();
        let id = unique_id("symproc");
        let err = fails(&b.brig(&["create", &id]));
        let typ = if dir == "proc" { "proc" } else { "sysfs" };
        assert!(
            err.contains(&format!(
                "filesystem \"{typ}\" must be mounted on ordinary directory"
            )),
            "{dir}: {err}"
        );
        assert!(b.containers().is_empty(), "{dir}");
        assert!(b.leaked_mounts().is_empty(), "{dir}");
        assert!(
            !b.rootfs().join("symlink").exists(),
            "{dir}: followed the symlink"
        );
    }
}

#[test]
fn no_pivot_does_not_let_a_user_namespace_mount_proc() {
    // runc's no_pivot.bats: the host's /proc left below the chroot would let a nested user
    // namespace mount a fresh, unmasked procfs.
    let mut b = Bundle::with_script(
        "nopivotproc",
        "unshare -mrpf sh -c 'mount -t proc none /proc && echo mounted' 2>&1; echo rc=$?",
    );
    b.edit(|c| {
        let caps = json!([
            "CAP_AUDIT_WRITE",
            "CAP_KILL",
            "CAP_NET_BIND_SERVICE",
            "CAP_SETFCAP"
        ]);
        c["process"]["capabilities"] =
            json!({"bounding": caps, "permitted": caps, "effective": caps});
        c["process"]["noNewPrivileges"] = json!(true);
    });
    let out = ok(&b.brig(&["run", "--no-pivot", &unique_id("nopivotproc")]));
    assert!(!out.contains("mounted"), "{out}");
    assert!(out.contains("mount: permission denied"), "{out}");
    assert!(b.leaked_mounts().is_empty());
}

#[test]
fn an_rshared_bind_mount_stays_in_the_hosts_peer_group() {
    // Kubernetes' Bidirectional: rootfsPropagation rshared and an [rbind, rshared] bind of an
    // rshared directory; a mount made there after start must show inside.
    let mut b = Bundle::with_script("rshared", "sleep 100");
    b.edit(|c| {
        c["linux"]["rootfsPropagation"] = json!("rshared");
        c["mounts"].as_array_mut().unwrap().push(json!(
            {"destination": "/shared", "type": "bind", "source": "shared", "options": ["rbind", "rshared"]}
        ));
    });
    let id = unique_id("rshared");
    let out = in_private_mount_namespace(
        &b,
        &format!(
            "mkdir -p shared
             mount --bind shared shared
             mount --make-rshared shared
             $BRIG run -d {id} </dev/null >/dev/null 2>&1
             mkdir -p shared/later
             mount -t tmpfs -o size=1m later shared/later
             echo seen-inside > shared/later/file
             $BRIG exec {id} cat /shared/later/file
             $BRIG exec {id} grep -c ' /shared/later ' /proc/self/mountinfo
             $BRIG delete --force {id}"
        ),
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{}{}", text, stderr(&out));
    assert_eq!(text, "seen-inside\n1\n");
}

#[test]
fn a_read_only_dev_still_gets_dev_pts_and_its_nodes() {
    // runc's mounts.bats "ro /dev mount": /dev is made read-only after what goes in it.
    let mut b = Bundle::with_script(
        "rodev",
        "grep '^tmpfs /dev ' /proc/mounts; grep -c ' /dev/pts ' /proc/mounts; \
         ls /dev/null /dev/ptmx >/dev/null && echo nodes; touch /dev/x 2>/dev/null || echo ro",
    );
    b.edit(|c| {
        for m in c["mounts"].as_array_mut().unwrap() {
            if m["destination"] == "/dev" {
                m["options"].as_array_mut().unwrap().push(json!("ro"));
            }
        }
    });
    let out = ok(&b.run(&unique_id("rodev")));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains(" ro,"), "{out}");
    assert_eq!(&lines[1..], ["1", "nodes", "ro"], "{out}");
}
