//! The store's cache of unpacked rootfs trees (issue 15): `run --image` unpacks an image once
//! into STORE/rootfs/CHAIN and gives each container an overlay over it (as root) or a copy;
//! what a container writes never reaches the tree nor the next container; `delete` and `--rm`
//! unmount; `rmi` removes trees of images that went unless a container uses them; temporary
//! directories a crashed unpack left are swept; `brig pull`'s progress on a terminal only.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use integration::image::ImageScratch;
use integration::*;
use serde_json::Value;

/// hack/make-image.sh's busybox layout, a store and a state root (integration::image).
type Scratch = ImageScratch;

/// The cached trees of the store (their chain IDs).
fn cached_trees(s: &Scratch) -> Vec<String> {
    let mut trees: Vec<String> = fs::read_dir(s.store().join("rootfs"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.len() == 64)
                .collect()
        })
        .unwrap_or_default();
    trees.sort();
    trees
}

/// Bundles registered as using tree `key`.
fn tree_users(s: &Scratch, key: &str) -> usize {
    fs::read_dir(s.store().join("rootfs").join(format!("{key}.users")))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The filesystem type mounted exactly at `path`, if any.
fn fstype_at(path: &Path) -> Option<String> {
    let want = path.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(want.as_str()))
        .filter_map(|l| l.split(" - ").nth(1))
        .filter_map(|t| t.split(' ').next().map(str::to_string))
        .next_back()
}

// The image runs as uid 1000, whose home is the one place it may write.
const WRITE: &str = "echo mine >/home/brig/written; cat /home/brig/written";
const LOOK: &str = "test -e /home/brig/written && echo seen || echo unseen; ls /home/brig | wc -l";

/// Overlay (as root): the first `run --image` makes the tree, a second reuses it; writes,
/// deletions and appends of one container reach neither the tree nor the next container;
/// the rootfs is an overlay while the container lives and nothing is left after `delete`.
#[test]
fn overlay_rootfs_over_the_cached_tree() {
    let s = Scratch::new("img-cache-ovl");
    let id = unique_id("cache-a");
    let out = s.run_image(&[], &["--rm", &id, "--", "sh", "-c", WRITE]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "mine");
    let trees = cached_trees(&s);
    assert_eq!(trees.len(), 1, "one tree per image: {trees:?}");
    let tree = s.store().join("rootfs").join(&trees[0]);
    assert!(
        !tree.join("home/brig/written").exists(),
        "the tree is not written"
    );
    assert!(!s.bundle(&id).exists());
    assert_eq!(
        tree_users(&s, &trees[0]),
        0,
        "--rm dropped its registration"
    );
    let mtime = fs::metadata(&tree).unwrap().modified().unwrap();

    // Detached: the rootfs is an overlay on the tree; the next container sees the image.
    let id2 = unique_id("cache-b");
    let out = s.run_image(&[], &["--detach", &id2, "--", "sleep", "100"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rootfs = s.bundle(&id2).join("rootfs");
    assert_eq!(fstype_at(&rootfs).as_deref(), Some("overlay"));
    assert_eq!(tree_users(&s, &trees[0]), 1);
    let out = s.brig(&["exec", &id2, "sh", "-c", LOOK]);
    assert_eq!(
        stdout(&out).split_whitespace().collect::<Vec<_>>(),
        ["unseen", "0"]
    );
    // The overlay's root is the image's root (owner and mode), not brig's upper directory.
    let out = s.brig(&["exec", &id2, "stat", "-c", "%u %a", "/"]);
    let top = fs::metadata(&tree).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        stdout(&out).trim(),
        format!("{} {:o}", top.uid(), top.mode() & 0o7777)
    );
    ok(&s.brig(&["delete", "--force", &id2]));
    assert_eq!(fstype_at(&rootfs), None, "delete unmounted the rootfs");
    assert!(!s.bundle(&id2).exists());
    assert_eq!(tree_users(&s, &trees[0]), 0);
    assert_eq!(
        cached_trees(&s),
        trees,
        "the tree stays while its image is in the store"
    );
    assert_eq!(fs::metadata(&tree).unwrap().modified().unwrap(), mtime);
}

/// The copy fallback (BRIG_IMAGE_ROOTFS=copy; what a kernel without overlayfs gets): a private
/// copy with the image's owners, the same isolation, nothing registered.
#[test]
fn copied_rootfs_from_the_cached_tree() {
    let s = Scratch::new("img-cache-copy");
    let copy = [("BRIG_IMAGE_ROOTFS", "copy")];
    let id = unique_id("cache-copy");
    let out = s.run_image(&copy, &["--keep", &id, "--", "sh", "-c", WRITE]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rootfs = s.bundle(&id).join("rootfs");
    assert_eq!(fstype_at(&rootfs), None, "a copy, not a mount");
    assert_eq!(
        fs::read_to_string(rootfs.join("home/brig/written")).unwrap(),
        "mine\n"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(rootfs.join("home/brig")).unwrap().uid(), 1000);
    let trees = cached_trees(&s);
    assert_eq!(trees.len(), 1);
    assert!(!s
        .store()
        .join("rootfs")
        .join(&trees[0])
        .join("home/brig/written")
        .exists());
    assert_eq!(tree_users(&s, &trees[0]), 0);
    ok(&s.brig(&["delete", &id]));
    assert!(!s.bundle(&id).exists());
    let id2 = unique_id("cache-copy2");
    let out = s.run_image(&copy, &["--rm", &id2, "--", "sh", "-c", LOOK]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).split_whitespace().collect::<Vec<_>>(),
        ["unseen", "0"]
    );
    // An unknown mode is an error naming the variable, and leaves nothing.
    let id3 = unique_id("cache-bad");
    let out = s.run_image(
        &[("BRIG_IMAGE_ROOTFS", "reflink")],
        &["--rm", &id3, "--", "true"],
    );
    let err = fails(&out);
    assert!(err.contains("BRIG_IMAGE_ROOTFS"), "{err}");
    assert!(!s.bundle(&id3).exists());
}

/// `rmi` removes the tree of the image it removes, but not while a container's bundle uses
/// it: then the container's `delete` does. A registration whose bundle is gone (a crash, a
/// wiped state directory) does not keep a tree.
#[test]
fn rmi_removes_trees_no_container_uses() {
    let s = Scratch::new("img-cache-rmi");
    let store = s.store();
    let store = store.to_str().unwrap();
    let id = unique_id("cache-rmi");
    let out = s.run_image(&[], &["--detach", &id, "--", "sleep", "100"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let trees = cached_trees(&s);
    assert_eq!(trees.len(), 1);
    let out = ok(&s.brig(&["rmi", "--store", store, &s.image()]));
    assert!(out.contains("kept 1 cached rootfs trees"), "{out}");
    assert_eq!(cached_trees(&s), trees, "in use: kept");
    let out = s.brig(&["exec", &id, "cat", "/etc/hostname"]);
    assert!(out.status.success(), "{}", stderr(&out));
    ok(&s.brig(&["delete", "--force", &id]));
    assert!(
        cached_trees(&s).is_empty(),
        "the last user's delete removed it"
    );

    // A stale registration (its bundle is gone) keeps nothing.
    let id2 = unique_id("cache-rmi2");
    let out = s.run_image(&[], &["--rm", &id2, "--", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let key = cached_trees(&s).pop().unwrap();
    let users = s.store().join("rootfs").join(format!("{key}.users"));
    fs::create_dir_all(&users).unwrap();
    fs::write(
        users.join("0123"),
        s.0.join("no-such-bundle").to_str().unwrap(),
    )
    .unwrap();
    let out = ok(&s.brig(&["rmi", "--store", store, &s.image()]));
    assert!(out.contains("removed 1 cached rootfs trees"), "{out}");
    assert!(cached_trees(&s).is_empty());
    assert!(!users.exists());
}

/// A `run --image` whose container cannot be created leaves no bundle, mount or registration.
#[test]
fn failed_create_leaves_no_mount() {
    let s = Scratch::new("img-cache-fail");
    let id = unique_id("cache-fail");
    let pid_file = s.0.join("no/such/dir/pid");
    let out = s.run_image(
        &[],
        &["--pid-file", pid_file.to_str().unwrap(), &id, "--", "true"],
    );
    let err = fails(&out);
    assert!(err.contains("no/such/dir/pid"), "{err}");
    assert!(!s.bundle(&id).exists());
    assert!(mounts_under(&s.0).is_empty(), "{:?}", mounts_under(&s.0));
    let key = cached_trees(&s).pop().unwrap();
    assert_eq!(tree_users(&s, &key), 0);
}

/// Holds an exclusive flock on `dir` (as a live unpack does) until killed.
struct Holder(Child);

impl Holder {
    fn new(dir: &Path) -> Holder {
        // The lock is on the fd the shell opened and sleep inherits: killing sleep frees it.
        let child = Command::new("sh")
            .args(["-c", "exec 9<\"$0\"; flock 9; exec sleep 60"])
            .arg(dir)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut holder = Holder(child);
        // Wait until the lock is taken.
        for _ in 0..100 {
            let free = Command::new("flock")
                .args(["-n", "-E", "9"])
                .arg(dir)
                .arg("true")
                .status()
                .unwrap();
            if free.code() == Some(9) {
                return holder;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = holder.0.kill();
        let _ = holder.0.wait();
        panic!("flock did not take {}", dir.display());
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Temporary directories a crashed unpack left (no owner holds their lock) are removed at the
/// next unpack into the same place and by `rmi`'s collection; one whose owner is alive stays.
#[test]
fn stale_unpack_directories_are_swept() {
    let s = Scratch::new("img-cache-sweep");
    let store = s.store();
    let store_s = store.to_str().unwrap();
    // A crashed `brig pull REF BUNDLE`: the bundle holds only its temporary rootfs.
    let bundle = s.0.join("bundle");
    let crashed = bundle.join(".rootfs.unpack-999999-0");
    fs::create_dir_all(crashed.join("etc")).unwrap();
    fs::write(crashed.join("etc/half"), "x").unwrap();
    ok(&s.brig(&[
        "pull",
        "--quiet",
        "--store",
        store_s,
        &s.image(),
        bundle.to_str().unwrap(),
    ]));
    assert!(!crashed.exists(), "swept");
    assert!(bundle.join("rootfs/bin/busybox").exists());

    // In the cache: one left by a crash, one being written by a live process.
    let cache = store.join("rootfs");
    let dead = cache.join(format!(".{}.unpack-999999-0", "d".repeat(64)));
    let live = cache.join(format!(".{}.unpack-999998-0", "e".repeat(64)));
    for dir in [&dead, &live] {
        fs::create_dir_all(dir.join("usr")).unwrap();
    }
    let holder = Holder::new(&live);
    let id = unique_id("cache-sweep");
    let out = s.run_image(&[], &["--rm", &id, "--", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!dead.exists(), "the cache's unpack swept the dead one");
    assert!(live.exists(), "a live unpack's directory stays");
    // rmi's collection: the same rule.
    fs::create_dir_all(&dead).unwrap();
    ok(&s.brig(&["rmi", "--store", store_s, &s.image()]));
    assert!(!dead.exists());
    assert!(live.exists());
    drop(holder);
    ok(&s.brig(&["pull", "--quiet", "--store", store_s, &s.image()]));
    ok(&s.brig(&["rmi", "--store", store_s, &s.image()]));
    assert!(!live.exists(), "its owner gone, it goes too");
}

/// `brig pull REF BUNDLE` not on a terminal prints what it printed before the bars existed
/// (a summary line per stage); on a terminal a bar per layer (short digest, size, done).
#[test]
fn pull_progress_only_on_a_terminal() {
    let s = Scratch::new("img-cache-progress");
    let store = s.store();
    let bundle = s.0.join("bundle");
    let out = s.brig(&[
        "pull",
        "--store",
        store.to_str().unwrap(),
        &s.image(),
        bundle.to_str().unwrap(),
    ]);
    let text = ok(&out);
    let index: Value =
        serde_json::from_slice(&fs::read(s.0.join("layout/index.json")).unwrap()).unwrap();
    let manifest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.starts_with(&format!("manifest {manifest}\nconfig sha256:")),
        "{text}"
    );
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].starts_with("pulled oci:") && lines[0].contains(" blobs ("),
        "{err}"
    );
    assert!(lines[1].starts_with("unpacked 1 layers ("), "{err}");

    // On a terminal (script(1) gives one): the layer's bars.
    let manifest_path = s.0.join("layout/blobs/sha256").join(&manifest[7..]);
    let m: Value = serde_json::from_slice(&fs::read(manifest_path).unwrap()).unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap()[7..19].to_string();
    let store2 = s.0.join("store2");
    let bundle2 = s.0.join("bundle2");
    let line = format!(
        "{} --root {} pull --store {} {} {}",
        brig_binary().display(),
        s.root().display(),
        store2.display(),
        s.image(),
        bundle2.display()
    );
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let screen = stdout(&out);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains(&layer),
        "the layer's short digest: {screen}"
    );
    assert!(screen.contains("done"), "{screen}");
    assert!(screen.contains(&format!("unpack {layer}")), "{screen}");
    assert!(screen.contains("unpacked"), "{screen}");

    // --quiet: nothing on stderr, terminal or not.
    let bundle3 = s.0.join("bundle3");
    let out = s.pull(&[], &bundle3);
    ok(&out);
    assert_eq!(stderr(&out), "");
}
