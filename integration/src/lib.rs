//! Harness for end-to-end tests: real containers from a busybox-static bundle, driven through
//! the built `brig` binary, each test with its own state root and unique ids, cleaned up even
//! when the test fails (Drop).

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub mod image;
pub mod registry;
pub mod rootless_user;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The repository's top directory (hack/, target/).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The brig binary under test: `$BRIG_BINARY`, else the workspace's release or debug build.
pub fn brig_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("BRIG_BINARY") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    for profile in ["release", "debug"] {
        let candidate = target.join(profile).join("brig");
        if candidate.exists() {
            return candidate;
        }
    }
    panic!("no brig binary: run hack/build.sh first or set BRIG_BINARY");
}

/// A busybox rootfs built once by hack/make-rootfs.sh into the target directory and shared
/// (read-only, copied per bundle) by every test process.
fn base_rootfs() -> PathBuf {
    static ONCE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace().join("target"));
        let base = target.join("brig-it");
        let rootfs = base.join("rootfs");
        fs::create_dir_all(&base).unwrap();
        let lock = fs::File::create(base.join(".lock")).unwrap();
        // SAFETY: flock on a descriptor we own; released when `lock` is dropped.
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
        if !rootfs.join("bin/busybox").exists() {
            let building = base.join(format!("building-{}", std::process::id()));
            let status = Command::new(workspace().join("hack/make-rootfs.sh"))
                .arg(&building)
                .status()
                .unwrap();
            assert!(status.success(), "hack/make-rootfs.sh failed");
            fs::rename(building.join("rootfs"), &rootfs).unwrap();
            let _ = fs::remove_dir_all(&building);
        }
        rootfs
    })
    .clone()
}

pub fn unique_id(name: &str) -> String {
    format!(
        "{name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// A bundle (config.json + its own copy of the rootfs) and a private state root.
pub struct Bundle {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub config: Value,
}

impl Bundle {
    /// A bundle with brig's default config (`brig spec`, without a terminal).
    pub fn new(name: &str) -> Bundle {
        let dir = std::env::temp_dir().join(format!("brig-it-{}", unique_id(name)));
        let root = dir.join("state");
        fs::create_dir_all(&dir).unwrap();
        let status = Command::new("cp")
            .arg("-a")
            .arg(base_rootfs())
            .arg(dir.join("rootfs"))
            .status()
            .unwrap();
        assert!(status.success());
        let out = Command::new(brig_binary())
            .args(["spec", "--bundle"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "brig spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut config: Value =
            serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap();
        // `brig spec` gives runc's `terminal: true`; tests run from a harness without a
        // terminal and ask for one where they test it.
        config["process"]["terminal"] = json!(false);
        let bundle = Bundle { dir, root, config };
        bundle.save();
        bundle
    }

    pub fn with_script(name: &str, script: &str) -> Bundle {
        let mut bundle = Bundle::new(name);
        bundle.set_args(&["sh", "-c", script]);
        bundle
    }

    pub fn set_args(&mut self, args: &[&str]) {
        self.config["process"]["args"] = json!(args);
        self.save();
    }

    /// Change config.json with `f` and write it.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) {
        f(&mut self.config);
        self.save();
    }

    /// A new user namespace mapping container ids 0..65536 to host uids from `host_uid` and
    /// host gids from `host_gid`.
    pub fn add_user_namespace(&mut self, host_uid: u32, host_gid: u32) {
        self.edit(|c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            c["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": host_uid, "size": 65536}]);
            c["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": host_gid, "size": 65536}]);
        });
    }

    pub fn save(&self) {
        fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// Put an executable script into the rootfs.
    pub fn add_script(&self, path: &str, body: &str) {
        let file = self.rootfs().join(path.trim_start_matches('/'));
        fs::write(&file, body).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// `brig --root <own root> ARGS`, run in the bundle directory, no stdin. Output goes
    /// through files, not pipes: a detached container keeps brig's stdio open long after
    /// brig has exited, and a pipe would make us wait for the container.
    pub fn brig(&self, args: &[&str]) -> Output {
        output_via_files(self.command(args).stdin(Stdio::null()), &self.dir)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(brig_binary());
        cmd.arg("--root")
            .arg(&self.root)
            .args(args)
            .current_dir(&self.dir);
        cmd
    }

    /// `brig run ID` to completion.
    pub fn run(&self, id: &str) -> Output {
        self.brig(&["run", id])
    }

    pub fn state(&self, id: &str) -> Option<Value> {
        let out = self.brig(&["state", id]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap())
    }

    pub fn status(&self, id: &str) -> Option<String> {
        self.state(id)
            .map(|s| s["status"].as_str().unwrap().to_string())
    }

    /// Wait until `id` reports `status` (or panic after a few seconds).
    pub fn wait_status(&self, id: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.status(id).as_deref() != Some(status) {
            assert!(
                Instant::now() < deadline,
                "{id} never became {status}: {:?}",
                self.state(id)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Mount points below this bundle still present in our mount namespace.
    pub fn leaked_mounts(&self) -> Vec<String> {
        mounts_under(&self.dir)
    }

    /// Ids of the containers in this bundle's state root.
    pub fn containers(&self) -> Vec<String> {
        fs::read_dir(&self.root)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        for id in self.containers() {
            let _ = self.brig(&["delete", "--force", &id]);
        }
        // Lazy-unmount anything left below the bundle before removing it: a leaked bind mount
        // of a host directory must never be deleted through.
        for mount in mounts_under(&self.dir).iter().rev() {
            if let Ok(c) = std::ffi::CString::new(mount.as_str()) {
                // SAFETY: umount2 with a valid NUL-terminated path.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
        if mounts_under(&self.dir).is_empty() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Run `cmd` to its end with stdout and stderr captured in files under `dir`.
pub fn output_via_files(cmd: &mut Command, dir: &Path) -> Output {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let (out_path, err_path) = (dir.join(format!(".out-{n}")), dir.join(format!(".err-{n}")));
    let status = cmd
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap())
        .status()
        .unwrap();
    let output = Output {
        status,
        stdout: fs::read(&out_path).unwrap(),
        stderr: fs::read(&err_path).unwrap(),
    };
    let _ = fs::remove_file(out_path);
    let _ = fs::remove_file(err_path);
    output
}

pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|m| m == &prefix || m.starts_with(&format!("{prefix}/")))
        .collect()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Assert success and return stdout.
#[track_caller]
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "brig failed ({:?}): {}{}",
        out.status,
        stderr(out),
        stdout(out)
    );
    stdout(out)
}

/// Assert failure and return stderr.
#[track_caller]
pub fn fails(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "brig should have failed: {}",
        stdout(out)
    );
    stderr(out)
}

/// True while `pid` exists and is not a zombie.
pub fn pid_alive(pid: i64) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|r| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

pub fn write_stdin(cmd: &mut Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// A directory `NAME-<unique>` under the temp dir, removed on drop.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(unique_id(name));
        fs::create_dir_all(&dir).unwrap();
        ScratchDir(dir)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Deterministic pseudo-random bytes (xorshift), distinct per seed: blobs that do not compress
/// and that no two tests share.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The value of `path`'s extended attribute `name` (the link itself for a symlink), or None
/// when it has none.
pub fn lgetxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    let len = libcontainer::sys::xattr::lgetxattr(&p, &n, &mut buf).ok()?;
    buf.truncate(len);
    Some(buf)
}
