//! Layer unpacking (issue #15): fixture layers built here (python3 tarfile with hand-made PAX
//! records, GNU tar for sparse files), applied with `libcontainer::image::unpack`, and the
//! result checked file by file. Hostile layers must leave a canary directory outside the
//! bundle unchanged and no bundle behind. Runs as root (devices, chown, trusted.* xattrs).
//!
//! There is no CLI for unpacking yet (`brig pull … BUNDLE` wires it), so this calls the
//! library the CLI will call.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use integration::lgetxattr;
use libcontainer::image::unpack::{apply_layer, unpack, Layer, UnpackError};
use serde_json::{json, Value};

const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Writes a tar from a JSON list of entries. `pax` on an entry adds a hand-made PAX header
/// (values hex-encoded, so binary xattrs like security.capability survive) before it.
const MAKE_TAR: &str = r#"
import sys, json, tarfile, io
spec = json.load(sys.stdin)
fmt = {'pax': tarfile.PAX_FORMAT, 'gnu': tarfile.GNU_FORMAT, 'ustar': tarfile.USTAR_FORMAT}[spec['format']]
types = {'file': tarfile.REGTYPE, 'dir': tarfile.DIRTYPE, 'symlink': tarfile.SYMTYPE,
         'link': tarfile.LNKTYPE, 'char': tarfile.CHRTYPE, 'block': tarfile.BLKTYPE,
         'fifo': tarfile.FIFOTYPE}
def record(k, v):
    body = b' ' + k + b'=' + v + b'\n'
    n = len(body) + 1
    while len(str(n).encode()) + len(body) != n:
        n += 1
    return str(n).encode() + body
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode='w', format=fmt) as t:
    for e in spec['entries']:
        if 'pax' in e:
            data = b''.join(record(k.encode(), bytes.fromhex(v)) for k, v in e['pax'].items())
            x = tarfile.TarInfo('PaxHeaders/x')
            x.type = tarfile.XHDTYPE
            x.size = len(data)
            t.fileobj.write(x.tobuf(tarfile.USTAR_FORMAT))
            t.fileobj.write(data + b'\0' * ((512 - len(data) % 512) % 512))
            t.offset += 512 + len(data) + (512 - len(data) % 512) % 512
        ti = tarfile.TarInfo(e['name'])
        ti.type = types[e.get('type', 'file')]
        ti.mode = e.get('mode', 0o755 if ti.type == tarfile.DIRTYPE else 0o644)
        ti.uid = e.get('uid', 0)
        ti.gid = e.get('gid', 0)
        ti.mtime = e.get('mtime', 1600000000)
        ti.linkname = e.get('link', '')
        ti.devmajor = e.get('major', 0)
        ti.devminor = e.get('minor', 0)
        data = e.get('data', '').encode()
        if ti.type == tarfile.REGTYPE:
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        else:
            t.addfile(ti)
sys.stdout.buffer.write(buf.getvalue())
"#;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A scratch directory: `bundle/` (unpack target's parent) and `canary/` (must never change).
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("brig-unpack-{}-{}-{}", name, std::process::id(), n));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bundle")).unwrap();
        let canary = dir.join("canary");
        fs::create_dir_all(canary.join("sub")).unwrap();
        fs::write(canary.join("passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        fs::write(canary.join("sub/file"), "canary").unwrap();
        Scratch { dir }
    }
    fn rootfs(&self) -> PathBuf {
        self.dir.join("bundle/rootfs")
    }
    fn canary(&self) -> PathBuf {
        self.dir.join("canary")
    }
    /// Nothing but what the test made is in bundle/ (no rootfs, no temporary directory).
    fn assert_no_bundle(&self) {
        let left: Vec<_> = fs::read_dir(self.dir.join("bundle"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "left behind in the bundle dir: {left:?}");
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Names, types, modes, owners, mtimes, contents and link targets of a tree.
fn checksum(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let m = fs::symlink_metadata(dir).unwrap();
        out.insert(
            dir.strip_prefix(base).unwrap().to_path_buf(),
            format!("{:o} {}:{} {}", m.mode(), m.uid(), m.gid(), m.mtime()),
        );
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                walk(base, &p, out);
            } else {
                let content = if m.file_type().is_symlink() {
                    fs::read_link(&p).unwrap().display().to_string()
                } else {
                    String::from_utf8_lossy(&fs::read(&p).unwrap()).into_owned()
                };
                out.insert(
                    p.strip_prefix(base).unwrap().to_path_buf(),
                    format!(
                        "{:o} {}:{} {} {content}",
                        m.mode(),
                        m.uid(),
                        m.gid(),
                        m.mtime()
                    ),
                );
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

fn make_tar(format: &str, entries: Value) -> Vec<u8> {
    let spec = json!({"format": format, "entries": entries});
    pipe("python3", &["-c", MAKE_TAR], spec.to_string().as_bytes())
}

fn pipe(cmd: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "{cmd} failed");
    out.stdout
}

fn sha256(data: &[u8]) -> String {
    let out = pipe("sha256sum", &[], data);
    format!("sha256:{}", String::from_utf8_lossy(&out[..64]))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    pipe("gzip", &["-c", "-n"], data)
}

fn layer(tar: &[u8]) -> Layer<std::io::Cursor<Vec<u8>>> {
    Layer {
        reader: std::io::Cursor::new(tar.to_vec()),
        media_type: TAR.to_string(),
        diff_id: sha256(tar),
    }
}

fn unpack_tars(rootfs: &Path, tars: &[Vec<u8>]) -> Result<(), UnpackError> {
    unpack(rootfs, tars.iter().map(|t| layer(t))).map(drop)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn meta(p: &Path) -> fs::Metadata {
    fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn assert_file(p: &Path, content: &str, mode: u32, uid: u32, gid: u32, mtime: i64) {
    let m = meta(p);
    assert!(m.is_file(), "{} is not a file", p.display());
    assert_eq!(fs::read_to_string(p).unwrap(), content, "{}", p.display());
    assert_eq!(m.mode() & 0o7777, mode, "mode of {}", p.display());
    assert_eq!((m.uid(), m.gid()), (uid, gid), "owner of {}", p.display());
    assert_eq!(m.mtime(), mtime, "mtime of {}", p.display());
}

fn no_whiteouts_in(dir: &Path) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        assert!(
            !e.file_name().as_bytes().starts_with(b".wh."),
            "whiteout landed in the rootfs: {}",
            e.path().display()
        );
        if e.file_type().unwrap().is_dir() {
            no_whiteouts_in(&e.path());
        }
    }
}

fn long(n: usize) -> String {
    (0..n).map(|i| (b'a' + (i % 26) as u8) as char).collect()
}

#[test]
fn tar_features_file_by_file() {
    // The same content as PAX and as GNU (long names via L/K headers).
    for format in ["pax", "gnu"] {
        let s = Scratch::new(&format!("features-{format}"));
        let long_dir = format!("d/{}", long(120));
        let long_file = format!("{long_dir}/{}", long(150));
        let long_target = format!("/{}/{}", long(90), long(90));
        let cap = "0100000200200000000000000000000000000000"; // vfs cap v2, cap_net_raw
        let pax_xattrs = json!({
            "SCHILY.xattr.user.comment": hex(b"hello"),
            "SCHILY.xattr.trusted.overlay": hex(b"y"),
            "SCHILY.xattr.security.capability": cap,
        });
        let l1 = make_tar(
            format,
            json!([
                {"name": "./", "type": "dir", "mode": 0o755, "mtime": 1500000000},
                {"name": "./d/", "type": "dir", "mode": 0o750, "uid": 7, "gid": 8, "mtime": 1500000001},
                {"name": "./d/setuid", "mode": 0o4755, "uid": 1000, "gid": 1000, "data": "su", "mtime": 1500000002},
                {"name": "d/setgid", "mode": 0o2711, "uid": 1234, "gid": 5678, "data": "sg", "mtime": 1500000003},
                {"name": "/d/abs", "mode": 0o600, "data": "abs"},
                {"name": "tmp/", "type": "dir", "mode": 0o1777, "mtime": 1500000004},
                {"name": long_dir.clone() + "/", "type": "dir", "mode": 0o700},
                {"name": long_file.clone(), "data": "long", "mode": 0o640, "uid": 3, "gid": 4},
                {"name": "d/dup", "data": "first", "mode": 0o600},
                {"name": "d/dup", "data": "second", "mode": 0o644, "uid": 9},
                {"name": "d/dirthenfile", "type": "dir"},
                {"name": "d/dirthenfile", "data": "file"},
                {"name": "d/xattr", "data": "x", "mode": 0o755, "uid": 2, "gid": 2, "pax": pax_xattrs},
                {"name": "d/hard", "type": "link", "link": "d/setgid"},
                {"name": "d/abs-link", "type": "symlink", "link": "/etc/passwd", "uid": 5, "gid": 6, "mtime": 1400000000},
                {"name": "d/rel-link", "type": "symlink", "link": "../tmp"},
                {"name": "d/dangling", "type": "symlink", "link": "nowhere/at/all"},
                {"name": "d/loop1", "type": "symlink", "link": "loop2"},
                {"name": "d/loop2", "type": "symlink", "link": "loop1"},
                {"name": "d/long-link", "type": "symlink", "link": long_target.clone()},
                {"name": "d/hard-to-symlink", "type": "link", "link": "d/abs-link"},
                {"name": "d/hard-long", "type": "link", "link": long_file.clone()},
                {"name": "dev/null", "type": "char", "major": 1, "minor": 3, "mode": 0o666, "mtime": 1300000000},
                {"name": "dev/loop9", "type": "block", "major": 7, "minor": 9, "mode": 0o660, "gid": 6},
                {"name": "dev/fifo", "type": "fifo", "mode": 0o640, "uid": 11},
                {"name": "./late/", "type": "dir", "mode": 0o755, "mtime": 1200000000},
                {"name": "./late/child", "data": "c", "mtime": 1600000000},
            ]),
        );
        unpack_tars(&s.rootfs(), &[l1]).unwrap();
        let r = s.rootfs();
        assert_eq!(meta(&r).mode() & 0o7777, 0o755);
        assert_eq!(meta(&r).mtime(), 1500000000);
        let d = meta(&r.join("d"));
        assert_eq!(
            (d.mode() & 0o7777, d.uid(), d.gid(), d.mtime()),
            (0o750, 7, 8, 1500000001)
        );
        assert_file(&r.join("d/setuid"), "su", 0o4755, 1000, 1000, 1500000002);
        assert_file(&r.join("d/setgid"), "sg", 0o2711, 1234, 5678, 1500000003);
        assert_file(&r.join("d/abs"), "abs", 0o600, 0, 0, 1600000000);
        assert_eq!(meta(&r.join("tmp")).mode() & 0o7777, 0o1777);
        assert_eq!(meta(&r.join("tmp")).mtime(), 1500000004);
        assert_eq!(meta(&r.join(&long_dir)).mode() & 0o7777, 0o700);
        assert_file(&r.join(&long_file), "long", 0o640, 3, 4, 1600000000);
        assert_file(&r.join("d/dup"), "second", 0o644, 9, 0, 1600000000);
        assert_file(&r.join("d/dirthenfile"), "file", 0o644, 0, 0, 1600000000);
        assert_file(&r.join("d/xattr"), "x", 0o755, 2, 2, 1600000000);
        let x = r.join("d/xattr");
        assert_eq!(
            lgetxattr(&x, "user.comment").as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(lgetxattr(&x, "trusted.overlay").as_deref(), Some(&b"y"[..]));
        assert_eq!(
            lgetxattr(&x, "security.capability")
                .map(|v| hex(&v))
                .as_deref(),
            Some(cap),
            "security.capability must survive the chown"
        );
        // Hardlinks share the inode, also to a symlink.
        assert_eq!(
            meta(&r.join("d/hard")).ino(),
            meta(&r.join("d/setgid")).ino()
        );
        assert_eq!(meta(&r.join("d/setgid")).nlink(), 2);
        let hs = meta(&r.join("d/hard-to-symlink"));
        assert!(hs.file_type().is_symlink());
        assert_eq!(hs.ino(), meta(&r.join("d/abs-link")).ino());
        assert_eq!(
            meta(&r.join("d/hard-long")).ino(),
            meta(&r.join(&long_file)).ino()
        );
        // Symlinks: targets verbatim, owner and mtime on the link itself.
        let al = meta(&r.join("d/abs-link"));
        assert_eq!((al.uid(), al.gid(), al.mtime()), (5, 6, 1400000000));
        for (name, target) in [
            ("d/abs-link", "/etc/passwd"),
            ("d/rel-link", "../tmp"),
            ("d/dangling", "nowhere/at/all"),
            ("d/loop1", "loop2"),
            ("d/loop2", "loop1"),
            ("d/long-link", long_target.as_str()),
        ] {
            assert_eq!(
                fs::read_link(r.join(name)).unwrap(),
                Path::new(target),
                "{name}"
            );
        }
        let null = meta(&r.join("dev/null"));
        assert!(null.file_type().is_char_device());
        assert_eq!(
            (null.rdev(), null.mode() & 0o7777, null.mtime()),
            (libc::makedev(1, 3), 0o666, 1300000000)
        );
        let lp = meta(&r.join("dev/loop9"));
        assert!(lp.file_type().is_block_device());
        assert_eq!(
            (lp.rdev(), lp.mode() & 0o7777, lp.gid()),
            (libc::makedev(7, 9), 0o660, 6)
        );
        let ff = meta(&r.join("dev/fifo"));
        assert!(ff.file_type().is_fifo());
        assert_eq!((ff.mode() & 0o7777, ff.uid()), (0o640, 11));
        // A directory's mtime is set after its contents were written.
        assert_eq!(meta(&r.join("late")).mtime(), 1200000000);
    }
}

#[test]
fn pax_nanosecond_mtime_and_path_override() {
    let s = Scratch::new("pax-mtime");
    let l1 = make_tar(
        "ustar",
        json!([
            {"name": "short", "data": "p", "pax": {
                "mtime": hex(b"1600000000.123456789"),
                "path": hex(b"overridden/by/pax"),
                "uid": hex(b"4000000000"),
            }},
        ]),
    );
    unpack_tars(&s.rootfs(), &[l1]).unwrap();
    let m = meta(&s.rootfs().join("overridden/by/pax"));
    assert_eq!(
        (m.mtime(), m.mtime_nsec(), m.uid()),
        (1600000000, 123456789, 4000000000)
    );
    assert!(!s.rootfs().join("short").exists());
}

#[test]
fn hardlink_to_an_earlier_layer() {
    let s = Scratch::new("hardlink-lower");
    let l1 = make_tar(
        "pax",
        json!([{"name": "bin/tool", "data": "t", "mode": 0o755}]),
    );
    let l2 = make_tar(
        "pax",
        json!([{"name": "usr/bin/tool", "type": "link", "link": "bin/tool"}]),
    );
    unpack_tars(&s.rootfs(), &[l1, l2]).unwrap();
    let r = s.rootfs();
    assert_eq!(
        meta(&r.join("bin/tool")).ino(),
        meta(&r.join("usr/bin/tool")).ino()
    );
}

/// A sparse file of 8 MiB with `segments` 4 KiB data islands, archived by GNU tar in the
/// given format; returns the tar.
fn sparse_tar(s: &Scratch, segments: u64, args: &[&str]) -> Vec<u8> {
    let src = s.dir.join("sparse-src");
    let _ = fs::remove_dir_all(&src);
    fs::create_dir_all(&src).unwrap();
    let f = fs::File::create(src.join("holes")).unwrap();
    f.set_len(8 << 20).unwrap();
    for i in 0..segments {
        std::os::unix::fs::FileExt::write_all_at(&f, &[b'A' + i as u8; 4096], i * 65536 + 8192)
            .unwrap();
    }
    drop(f);
    let out = Command::new("tar")
        .args(args)
        .args([
            "-S",
            "--numeric-owner",
            "--owner=0",
            "--group=0",
            "--mtime=@1600000000",
        ])
        .arg("-C")
        .arg(&src)
        .args(["-cf", "-", "holes"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn sparse_files_stay_sparse() {
    let variants: [&[&str]; 4] = [
        &["--format=gnu"],
        &["--format=posix", "--sparse-version=0.0"],
        &["--format=posix", "--sparse-version=0.1"],
        &["--format=posix", "--sparse-version=1.0"],
    ];
    for args in variants {
        // 3 islands fit the old GNU header; 30 need extension blocks.
        for segments in [3u64, 30] {
            let s = Scratch::new("sparse");
            let tar = sparse_tar(&s, segments, args);
            unpack_tars(&s.rootfs(), &[tar]).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let p = s.rootfs().join("holes");
            let m = meta(&p);
            assert_eq!(m.len(), 8 << 20, "{args:?}");
            let data = fs::read(&p).unwrap();
            for i in 0..segments as usize {
                let at = i * 65536 + 8192;
                assert!(
                    data[at..at + 4096].iter().all(|&b| b == b'A' + i as u8),
                    "{args:?}"
                );
                assert!(data[at - 8192..at].iter().all(|&b| b == 0), "{args:?}");
            }
            // Only the islands are allocated (ext4 rounds to 4 KiB; allow metadata blocks).
            let allocated = m.blocks() * 512;
            assert!(
                allocated <= segments * 4096 + 64 * 1024,
                "{args:?}: {allocated} bytes allocated for {segments} islands"
            );
        }
    }
}

fn base_layer() -> Vec<u8> {
    make_tar(
        "pax",
        json!([
            {"name": "file1", "data": "1"},
            {"name": "a/", "type": "dir"},
            {"name": "a/file2", "data": "2"},
            {"name": "a/keep", "data": "k"},
            {"name": "b/", "type": "dir"},
            {"name": "b/inside", "data": "i"},
            {"name": "c/file3", "data": "3"},
            {"name": "x", "data": "old"},
            {"name": "o/", "type": "dir"},
            {"name": "o/b/c/bar", "data": "bar"},
            {"name": "o/lower", "data": "l"},
        ]),
    )
}

#[test]
fn whiteouts_in_every_order() {
    // Whiteouts before, after and between the entries they sit beside; the opaque marker
    // first and last in its directory.
    let orders: Vec<Value> = vec![
        json!([
            {"name": ".wh.file1"}, {"name": "a/.wh.file2"}, {"name": ".wh.b"}, {"name": "file4", "data": "4"},
            {"name": ".wh.x"}, {"name": "x", "data": "new"},
            {"name": "o/", "type": "dir"}, {"name": "o/.wh..wh..opq"},
            {"name": "o/b/", "type": "dir"}, {"name": "o/b/c/", "type": "dir"}, {"name": "o/b/c/foo", "data": "foo"},
        ]),
        json!([
            {"name": "file4", "data": "4"}, {"name": "x", "data": "new"},
            {"name": "o/", "type": "dir"}, {"name": "o/b/", "type": "dir"},
            {"name": "o/b/c/", "type": "dir"}, {"name": "o/b/c/foo", "data": "foo"},
            {"name": "o/.wh..wh..opq"},
            {"name": "a/.wh.file2"}, {"name": ".wh.b"}, {"name": ".wh.file1"},
            // Same-layer entries are not hidden by this layer's whiteout.
            {"name": ".wh.x"},
        ]),
        json!([
            {"name": "o/b/c/foo", "data": "foo"}, {"name": ".wh.file1"}, {"name": "x", "data": "new"},
            {"name": "o/.wh..wh..opq"}, {"name": "a/.wh.file2"}, {"name": "file4", "data": "4"},
            {"name": ".wh.b"}, {"name": ".wh.x"}, {"name": ".wh.never-existed"},
        ]),
    ];
    for (i, upper) in orders.into_iter().enumerate() {
        let s = Scratch::new("whiteouts");
        let l2 = make_tar("pax", upper);
        unpack_tars(&s.rootfs(), &[base_layer(), l2]).unwrap();
        let r = s.rootfs();
        assert!(!r.join("file1").exists(), "order {i}");
        assert!(!r.join("a/file2").exists(), "order {i}");
        assert_eq!(
            fs::read_to_string(r.join("a/keep")).unwrap(),
            "k",
            "order {i}"
        );
        assert!(!r.join("b").exists(), "order {i}");
        assert_eq!(
            fs::read_to_string(r.join("c/file3")).unwrap(),
            "3",
            "order {i}"
        );
        assert_eq!(
            fs::read_to_string(r.join("file4")).unwrap(),
            "4",
            "order {i}"
        );
        assert_eq!(fs::read_to_string(r.join("x")).unwrap(), "new", "order {i}");
        assert_eq!(
            fs::read_to_string(r.join("o/b/c/foo")).unwrap(),
            "foo",
            "order {i}"
        );
        assert!(
            !r.join("o/b/c/bar").exists(),
            "order {i}: opaque keeps lower content"
        );
        assert!(
            !r.join("o/lower").exists(),
            "order {i}: opaque keeps lower content"
        );
        no_whiteouts_in(&r);
    }
}

#[test]
fn opaque_root_and_whiteout_then_later_layer() {
    let s = Scratch::new("opaque-root");
    let l2 = make_tar(
        "pax",
        json!([{"name": ".wh..wh..opq"}, {"name": "only", "data": "o"}]),
    );
    let l3 = make_tar(
        "pax",
        json!([{"name": ".wh.only"}, {"name": "again", "data": "a"}]),
    );
    unpack_tars(&s.rootfs(), &[base_layer(), l2, l3]).unwrap();
    let names: Vec<_> = fs::read_dir(s.rootfs())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["again".to_string()]);
}

#[test]
fn replacements_across_layers() {
    let s = Scratch::new("replace");
    let l1 = make_tar(
        "pax",
        json!([
            {"name": "f2d", "data": "file"},
            {"name": "d2f/", "type": "dir"}, {"name": "d2f/child", "data": "c"},
            {"name": "l2d", "type": "symlink", "link": "/etc"},
            {"name": "d2l/", "type": "dir"}, {"name": "d2l/deep/", "type": "dir"}, {"name": "d2l/deep/x", "data": "x"},
            {"name": "f2l", "data": "f"},
            {"name": "back", "data": "v1"},
        ]),
    );
    let l2 = make_tar(
        "pax",
        json!([
            {"name": "f2d/", "type": "dir", "mode": 0o711}, {"name": "f2d/in", "data": "in"},
            {"name": "d2f", "data": "now a file"},
            {"name": "l2d/", "type": "dir"}, {"name": "l2d/passwd", "data": "mine"},
            {"name": "d2l", "type": "symlink", "link": "f2d"},
            {"name": "f2l", "type": "symlink", "link": "d2f"},
            {"name": "back/", "type": "dir"}, {"name": "back/x", "data": "x"},
        ]),
    );
    let l3 = make_tar(
        "pax",
        json!([{"name": "back", "data": "v3", "mode": 0o600}]),
    );
    unpack_tars(&s.rootfs(), &[l1, l2, l3]).unwrap();
    let r = s.rootfs();
    assert_eq!(meta(&r.join("f2d")).mode() & 0o7777, 0o711);
    assert_eq!(fs::read_to_string(r.join("f2d/in")).unwrap(), "in");
    assert_eq!(fs::read_to_string(r.join("d2f")).unwrap(), "now a file");
    assert!(meta(&r.join("l2d")).is_dir());
    assert_eq!(fs::read_to_string(r.join("l2d/passwd")).unwrap(), "mine");
    assert_eq!(fs::read_link(r.join("d2l")).unwrap(), Path::new("f2d"));
    assert_eq!(fs::read_link(r.join("f2l")).unwrap(), Path::new("d2f"));
    assert_file(&r.join("back"), "v3", 0o600, 0, 0, 1600000000);
}

#[test]
fn every_compression() {
    let tar = make_tar(
        "pax",
        json!([{"name": "etc/hostname", "data": "brig\n"}, {"name": "big", "data": long(200000)}]),
    );
    let diff_id = sha256(&tar);
    let half = tar.len() / 2;
    let mut multi = gzip(&tar[..half]);
    multi.extend(gzip(&tar[half..]));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (TAR, tar.clone()),
        (GZIP, gzip(&tar)),
        ("multi-member gzip", multi),
        (DOCKER_GZIP, gzip(&tar)),
        (ZSTD, pipe("zstd", &["-c", "-q"], &tar)),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            gzip(&tar),
        ),
    ];
    for (media_type, blob) in cases {
        let media = if media_type == "multi-member gzip" {
            GZIP
        } else {
            media_type
        };
        let s = Scratch::new("compression");
        fs::create_dir(s.rootfs()).unwrap();
        let stats = apply_layer(&s.rootfs(), &blob[..], media, &diff_id)
            .unwrap_or_else(|e| panic!("{media_type}: {e}"));
        assert_eq!(stats.diff_id, diff_id);
        assert_eq!(stats.tar_bytes, tar.len() as u64);
        assert_eq!(
            fs::read_to_string(s.rootfs().join("etc/hostname")).unwrap(),
            "brig\n"
        );
        assert_eq!(fs::read(s.rootfs().join("big")).unwrap().len(), 200000);
    }
    // The media type decides: gzip bytes labelled as a plain tar are not a tar.
    let s = Scratch::new("compression-guess");
    fs::create_dir(s.rootfs()).unwrap();
    let err = apply_layer(&s.rootfs(), &gzip(&tar)[..], TAR, &diff_id).unwrap_err();
    assert!(matches!(err, UnpackError::Tar { .. }), "{err}");
    let err = apply_layer(&s.rootfs(), &tar[..], "application/x-bzip2", &diff_id).unwrap_err();
    assert!(
        err.to_string().contains("unsupported layer media type"),
        "{err}"
    );
}

fn assert_rejected(s: &Scratch, layers: Vec<Layer<std::io::Cursor<Vec<u8>>>>, want: &str) {
    let before = checksum(&s.canary());
    let err = unpack(&s.rootfs(), layers).expect_err("layer must be rejected");
    let text = err.to_string();
    assert!(text.contains(want), "error {text:?} does not say {want:?}");
    assert_eq!(checksum(&s.canary()), before, "canary changed");
    s.assert_no_bundle();
}

#[test]
fn bad_layers_leave_no_bundle() {
    let tar = make_tar(
        "pax",
        json!([{"name": "a", "data": "a"}, {"name": "b", "data": long(100000)}]),
    );
    let good = layer(&make_tar("pax", json!([{"name": "lower", "data": "l"}])));

    // diff_id mismatch (the layer is applied while streaming, then thrown away).
    let s = Scratch::new("mismatch");
    let mut bad = layer(&tar);
    bad.diff_id = sha256(b"something else");
    assert_rejected(&s, vec![good, bad], "does not match its diff_id");

    // Truncated gzip.
    let s = Scratch::new("truncated");
    let gz = gzip(&tar);
    let cut = Layer {
        reader: std::io::Cursor::new(gz[..gz.len() / 2].to_vec()),
        media_type: GZIP.to_string(),
        diff_id: sha256(&tar),
    };
    assert_rejected(&s, vec![cut], "layer 0");

    // A truncated plain tar.
    let s = Scratch::new("truncated-tar");
    let short = tar[..tar.len() - 5000].to_vec();
    let mut l = layer(&short);
    l.diff_id = sha256(&tar);
    assert_rejected(&s, vec![l], "layer 0");

    // Not a tar at all.
    let s = Scratch::new("not-tar");
    let junk = long(4096).into_bytes();
    assert_rejected(&s, vec![layer(&junk)], "not a tar archive");

    // Corrupt gzip and zstd.
    let s = Scratch::new("corrupt-gzip");
    let mut gz = gzip(&tar);
    let mid = gz.len() / 2;
    gz[mid] ^= 0xff;
    gz[mid + 1] ^= 0xff;
    let l = Layer {
        reader: std::io::Cursor::new(gz),
        media_type: GZIP.to_string(),
        diff_id: sha256(&tar),
    };
    assert_rejected(&s, vec![l], "layer 0");
    let s = Scratch::new("not-zstd");
    let l = Layer {
        reader: std::io::Cursor::new(tar.clone()),
        media_type: ZSTD.to_string(),
        diff_id: sha256(&tar),
    };
    assert_rejected(&s, vec![l], "layer 0");

    // A destination that is not empty is refused and kept.
    let s = Scratch::new("not-empty");
    fs::create_dir(s.rootfs()).unwrap();
    fs::write(s.rootfs().join("mine"), "x").unwrap();
    let err = unpack(&s.rootfs(), vec![layer(&tar)]).unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
    assert!(s.rootfs().join("mine").exists());
}

/// Hostile layers: each tries to read, write, chmod, chown or delete through the rootfs
/// boundary. Either refused (with the entry named, no bundle left) or contained (the write
/// lands inside the rootfs); the canary never changes.
#[test]
fn escapes_are_rejected_or_contained() {
    // Refused: `..` in a name or in a hardlink target; a hardlink to a host path that does
    // not exist inside the rootfs.
    let s = Scratch::new("dotdot");
    let rel = "../../canary/pwned".to_string();
    let l = make_tar("pax", json!([{"name": rel.clone(), "data": "pwned"}]));
    assert_rejected(&s, vec![layer(&l)], "\"../../canary/pwned\"");

    let s = Scratch::new("dotdot-deep");
    let l = make_tar(
        "pax",
        json!([{"name": "a/", "type": "dir"}, {"name": "a/../../../canary/passwd", "data": "x"}]),
    );
    assert_rejected(&s, vec![layer(&l)], "..");

    let s = Scratch::new("hardlink-host");
    let l = make_tar(
        "pax",
        json!([{"name": "steal", "type": "link", "link": s.canary().join("passwd").to_str().unwrap()}]),
    );
    assert_rejected(&s, vec![layer(&l)], "steal");

    let s = Scratch::new("hardlink-dotdot");
    let l = make_tar(
        "pax",
        json!([{"name": "steal", "type": "link", "link": "../../canary/passwd"}]),
    );
    assert_rejected(&s, vec![layer(&l)], "steal");

    // Hardlink through a symlinked directory to the host: resolved inside the rootfs.
    let s = Scratch::new("hardlink-via-symlink");
    let l = make_tar(
        "pax",
        json!([
            {"name": "hostdir", "type": "symlink", "link": s.canary().to_str().unwrap()},
            {"name": "steal", "type": "link", "link": "hostdir/passwd"},
        ]),
    );
    assert_rejected(&s, vec![layer(&l)], "steal");

    // Contained: absolute names, symlinks to the host (absolute or `..`) followed by writes
    // through them, in the same layer or a later one; chmod/chown/whiteout through them.
    let s = Scratch::new("contained");
    let host = s.canary();
    let host_str = host.to_str().unwrap().to_string();
    let before = checksum(&host);
    let l1 = make_tar(
        "pax",
        json!([
            {"name": format!("{host_str}/abs-name"), "data": "abs"},
            {"name": "etc", "type": "symlink", "link": host_str.clone()},
            {"name": "etc/passwd", "data": "evil", "mode": 0o777, "uid": 666},
            {"name": "up", "type": "symlink", "link": ".."},
            {"name": "up/up/up/canary/sub/file", "data": "evil"},
            {"name": "deep", "type": "symlink", "link": "../../../../../../.."},
            {"name": "deep/canary/passwd", "data": "evil"},
        ]),
    );
    let l2 = make_tar(
        "pax",
        json!([
            {"name": "later", "type": "symlink", "link": host_str.clone()},
            {"name": "up2", "type": "symlink", "link": "../.."},
        ]),
    );
    let l3 = make_tar(
        "pax",
        json!([
            {"name": "later/passwd", "data": "evil"},
            {"name": "later/sub/", "type": "dir", "mode": 0o777, "uid": 666},
            {"name": "later/.wh.passwd"},
            {"name": "up2/canary/.wh.sub"},
            {"name": "later/sub/.wh..wh..opq"},
            {"name": "up2/canary/hard", "type": "link", "link": "later/passwd"},
            // A file entry on top of a symlink replaces the symlink, never writes through it.
            {"name": "etc", "data": "replaced"},
        ]),
    );
    let stats = unpack(&s.rootfs(), vec![layer(&l1), layer(&l2), layer(&l3)]);
    stats.unwrap_or_else(|e| panic!("contained layers failed: {e}"));
    assert_eq!(checksum(&host), before, "canary changed");
    let r = s.rootfs();
    let inside = r.join(host.strip_prefix("/").unwrap());
    assert_eq!(fs::read_to_string(inside.join("abs-name")).unwrap(), "abs");
    assert_eq!(fs::read_to_string(r.join("canary/passwd")).unwrap(), "evil");
    assert_eq!(fs::read_to_string(r.join("etc")).unwrap(), "replaced");
    // Writes and whiteouts through `later` and `up2` stayed inside; `later/passwd` is this
    // layer's own entry, so this layer's `later/.wh.passwd` leaves it.
    assert_eq!(fs::read_to_string(inside.join("passwd")).unwrap(), "evil");
    assert_eq!(
        meta(&r.join("canary/hard")).ino(),
        meta(&inside.join("passwd")).ino()
    );
    assert!(!r.join("canary/sub").exists());
    assert!(host.join("passwd").exists());
    assert!(inside.join("sub").is_dir());
    no_whiteouts_in(&r);
}

#[test]
fn a_symlink_planted_earlier_cannot_redirect_a_later_layer() {
    // The classic: layer 1 makes `etc` a symlink to the host's directory, layer 2 writes
    // `etc/passwd` (without an `etc/` entry). The write lands in the rootfs.
    let s = Scratch::new("two-layer");
    let host = s.canary();
    let before = checksum(&host);
    let l1 = make_tar(
        "gnu",
        json!([{"name": "etc", "type": "symlink", "link": host.to_str().unwrap()}]),
    );
    let l2 = make_tar(
        "gnu",
        json!([{"name": "etc/passwd", "data": "evil", "mode": 0o4777}]),
    );
    unpack_tars(&s.rootfs(), &[l1, l2]).unwrap();
    assert_eq!(checksum(&host), before);
    let landed = s
        .rootfs()
        .join(host.strip_prefix("/").unwrap())
        .join("passwd");
    assert_eq!(fs::read_to_string(landed).unwrap(), "evil");
}

/// overlayfs' own attributes (`trusted.overlay.*`: opaque, redirect, metacopy, origin, ...)
/// can steer an overlay mount that uses the unpacked tree as a lower layer (`run --image`'s
/// cache): a layer carrying one is refused, naming the entry, and leaves no bundle. Other
/// `trusted.*` attributes (even `trusted.overlay` itself, outside the namespace) still apply.
#[test]
fn overlay_xattrs_are_refused() {
    for (key, entry_type) in [
        ("trusted.overlay.opaque", "dir"),
        ("trusted.overlay.redirect", "dir"),
        ("trusted.overlay.metacopy", "file"),
    ] {
        let s = Scratch::new("ovl-xattr");
        let lower = make_tar("pax", json!([{"name": "d/lower", "data": "l"}]));
        let upper = make_tar(
            "pax",
            json!([
                {"name": "ok", "data": "fine"},
                {"name": "d", "type": entry_type, "pax": {
                    format!("SCHILY.xattr.{key}"): hex(b"y"),
                }},
            ]),
        );
        let before = checksum(&s.canary());
        let err = unpack(&s.rootfs(), vec![layer(&lower), layer(&upper)])
            .expect_err("an overlay xattr must be refused");
        let text = err.to_string();
        assert!(
            text.contains("tar entry \"d") && text.contains(key) && text.contains("layer 1"),
            "error {text:?} does not name the entry, the attribute and the layer"
        );
        assert_eq!(checksum(&s.canary()), before, "canary changed");
        s.assert_no_bundle();
    }
    let s = Scratch::new("ovl-xattr-ok");
    let fine = make_tar(
        "pax",
        json!([{"name": "d", "type": "dir", "pax": {
            "SCHILY.xattr.trusted.overlayish": hex(b"y"),
            "SCHILY.xattr.trusted.overlay": hex(b"y"),
        }}]),
    );
    unpack(&s.rootfs(), vec![layer(&fine)]).unwrap();
    assert_eq!(
        lgetxattr(&s.rootfs().join("d"), "trusted.overlayish").as_deref(),
        Some(&b"y"[..])
    );
}
