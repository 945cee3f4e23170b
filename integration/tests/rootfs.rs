//! Attacks on the rootfs setup from a hostile image (issue #12): a `/dev/null` or
//! `/dev/console` that is, or is raced into, a symlink must not redirect the masks or the
//! console mount. Every victim here is a file this test made; nothing real is pointed at.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use integration::*;
use serde_json::json;

/// No `/dev` tmpfs: the rootfs's own `/dev` entries are what the container gets.
fn without_dev_tmpfs(b: &mut Bundle) {
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["destination"] != "/dev");
    });
}

fn mknod_null(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: mknod with a valid NUL-terminated path; the result is checked.
    let ret = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    assert_eq!(ret, 0, "mknod {}", path.display());
}

/// Swaps two directory entries atomically (RENAME_EXCHANGE) until dropped: the racing half of
/// the attack, as a process in another container sharing the rootfs would run it.
struct Swapper {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Swapper {
    fn start(a: &Path, b: &Path) -> Swapper {
        let stop = Arc::new(AtomicBool::new(false));
        let (a, b) = (
            CString::new(a.as_os_str().as_bytes()).unwrap(),
            CString::new(b.as_os_str().as_bytes()).unwrap(),
        );
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                // SAFETY: renameat2 with two valid NUL-terminated paths.
                unsafe {
                    libc::renameat2(
                        libc::AT_FDCWD,
                        a.as_ptr(),
                        libc::AT_FDCWD,
                        b.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
                std::thread::sleep(Duration::from_micros(300));
            }
        });
        Swapper {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A bundle with a host directory as a volume at `/data` that `readonlyPaths` makes read-only,
/// a masked `/secretfile`, and a process that writes to it. `/dev/null` is left to the
/// caller: pointed at `/data/victim` it is the CVE's `/proc/sys/vm/drop_caches` in miniature (a
/// file the container may only read, bound writable over a masked path before the read-only
/// paths are made). Returns the bundle and the host victim file.
fn masked_path_attack(name: &str) -> (Bundle, std::path::PathBuf) {
    let mut b = Bundle::with_script(
        name,
        "echo pwned > /secretfile; cat /secretfile; grep secretfile /proc/self/mountinfo; true",
    );
    without_dev_tmpfs(&mut b);
    let volume = b.dir.join("volume");
    std::fs::create_dir(&volume).unwrap();
    let victim = volume.join("victim");
    std::fs::write(&victim, "untouched\n").unwrap();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!(
            {"destination": "/data", "type": "bind", "source": volume, "options": ["rbind"]}
        ));
        c["linux"]["maskedPaths"] = json!(["/secretfile"]);
        c["linux"]["readonlyPaths"] = json!(["/data"]);
    });
    std::fs::write(b.rootfs().join("secretfile"), "secret\n").unwrap();
    (b, victim)
}

const NULL_TARGET: &str = "/data/victim";

#[test]
fn a_symlinked_dev_null_cannot_turn_a_mask_into_a_bind_of_a_host_file() {
    let (b, victim) = masked_path_attack("masknull");
    let null = b.rootfs().join("dev/null");
    let _ = std::fs::remove_file(&null);
    std::os::unix::fs::symlink(NULL_TARGET, &null).unwrap();
    let out = b.run(&unique_id("masknull"));
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "untouched\n",
        "the mask wrote through to the host: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let err = fails(&out);
    assert!(err.contains("/dev/null is not the null device"), "{err}");
}

#[test]
fn a_dev_null_raced_into_a_symlink_cannot_unmask_to_a_host_file() {
    let (b, victim) = masked_path_attack("masknullrace");
    let null = b.rootfs().join("dev/null");
    let swap = b.rootfs().join("dev/null.swap");
    let _ = std::fs::remove_file(&null);
    mknod_null(&null);
    std::os::unix::fs::symlink(NULL_TARGET, &swap).unwrap();
    let swapper = Swapper::start(&null, &swap);
    let mut masked = 0;
    for _ in 0..20 {
        let out = b.run(&unique_id("masknullrace"));
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "untouched\n",
            "the mask wrote through to the host: {}{}",
            stdout(&out),
            stderr(&out)
        );
        if out.status.success() {
            // It ran with the real null device over /secretfile.
            assert!(!stdout(&out).contains("pwned"), "{}", stdout(&out));
            masked += 1;
        } else {
            assert!(
                stderr(&out).contains("/dev/null is not the null device"),
                "{}",
                stderr(&out)
            );
        }
    }
    drop(swapper);
    eprintln!("{masked} of 20 runs started, masked by the null device");
}

/// A terminal container without a `/dev` tmpfs whose `/dev/console` the caller sets up, and
/// a `/victim` file in its rootfs that the pty must never be mounted over.
fn console_attack(name: &str) -> Bundle {
    let mut b = Bundle::with_script(
        name,
        "if grep -q ' /victim ' /proc/self/mountinfo; then echo VICTIM-MOUNTED; else echo clean; fi",
    );
    without_dev_tmpfs(&mut b);
    b.edit(|c| c["process"]["terminal"] = json!(true));
    std::fs::write(b.rootfs().join("victim"), "victim\n").unwrap();
    let _ = std::fs::remove_file(b.rootfs().join("dev/console"));
    b
}

#[test]
fn a_symlinked_dev_console_cannot_send_the_pty_elsewhere() {
    let b = console_attack("consolelink");
    std::os::unix::fs::symlink("/victim", b.rootfs().join("dev/console")).unwrap();
    let out = b.run(&unique_id("consolelink"));
    assert!(!stdout(&out).contains("VICTIM-MOUNTED"), "{}", stdout(&out));
    let err = fails(&out);
    assert!(err.contains("/dev/console is a symlink"), "{err}");
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("victim")).unwrap(),
        "victim\n"
    );
}

#[test]
fn a_dev_console_raced_into_a_symlink_cannot_send_the_pty_elsewhere() {
    let b = console_attack("consolerace");
    let console = b.rootfs().join("dev/console");
    let swap = b.rootfs().join("dev/console.swap");
    std::fs::write(&console, "").unwrap();
    std::os::unix::fs::symlink("/victim", &swap).unwrap();
    let swapper = Swapper::start(&console, &swap);
    let mut clean = 0;
    for _ in 0..20 {
        let out = b.run(&unique_id("consolerace"));
        let text = stdout(&out);
        assert!(!text.contains("VICTIM-MOUNTED"), "{text}");
        if out.status.success() {
            assert!(text.contains("clean"), "{text}");
            clean += 1;
        } else {
            let err = stderr(&out);
            assert!(err.contains("/dev/console"), "{err}");
        }
    }
    drop(swapper);
    eprintln!("{clean} of 20 runs started with the pty on /dev/console");
}
