//! A user made for one test (issue 17): `useradd`, with the subordinate ranges useradd gives
//! it, a busybox bundle it owns (config.json from `brig spec --rootless` run as the user) and
//! its own copy of brig, which it runs through setpriv; a guard deletes the user's containers,
//! the user, its ranges and its files, even when the test fails. Used by
//! tests/rootless.rs and tests/image_rootless.rs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::*;
/// useradd and userdel lock /etc/passwd: one at a time in this process.
pub static USERS: Mutex<()> = Mutex::new(());

/// A user made for one test, with its subordinate ranges, a bundle it owns and its own copy
/// of brig (the build tree may not be readable to it).
pub struct RootlessUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub subuid: u32,
    pub subgid: u32,
    /// The bundle: config.json from `brig spec --rootless` run as the user, rootfs owned by it.
    pub bundle: Bundle,
    pub brig: PathBuf,
    pub xdg: PathBuf,
}

pub fn subordinate_start(file: &str, name: &str) -> Option<u32> {
    fs::read_to_string(file).ok()?.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() == 3 && f[0] == name).then(|| f[1].parse().ok())?
    })
}

pub fn id_of(flag: &str, name: &str) -> u32 {
    let out = Command::new("id").args([flag, name]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

impl RootlessUser {
    pub fn new(test: &str) -> RootlessUser {
        let mut bundle = Bundle::new(test);
        fs::remove_file(bundle.dir.join("config.json")).unwrap();
        let xdg = bundle.dir.join("xdg");
        let brig = bundle.dir.join("brig");
        let name = format!("brl{}x{}", std::process::id() % 100000, rand_suffix());
        {
            let _lock = USERS.lock().unwrap_or_else(|e| e.into_inner());
            let out = Command::new("useradd")
                .args(["--no-create-home", "--shell", "/bin/sh", &name])
                .output()
                .unwrap();
            assert!(out.status.success(), "useradd: {}", stderr(&out));
        }
        bundle.config = Value::Null;
        // From here the guard removes the user, whatever fails next.
        let mut user = RootlessUser {
            uid: id_of("-u", &name),
            gid: id_of("-g", &name),
            name,
            subuid: 0,
            subgid: 0,
            bundle,
            brig,
            xdg,
        };
        // useradd gives ranges when /etc/subuid exists; add them otherwise.
        for file in ["/etc/subuid", "/etc/subgid"] {
            let start = match subordinate_start(file, &user.name) {
                Some(start) => start,
                None => {
                    let _lock = USERS.lock().unwrap_or_else(|e| e.into_inner());
                    let start = 1_000_000 + (user.uid % 1000) * 65536;
                    let mut text = fs::read_to_string(file).unwrap_or_default();
                    text.push_str(&format!("{}:{start}:65536\n", user.name));
                    fs::write(file, text).unwrap();
                    start
                }
            };
            if file == "/etc/subuid" {
                user.subuid = start;
            } else {
                user.subgid = start;
            }
        }
        fs::create_dir(&user.xdg).unwrap();
        fs::set_permissions(&user.xdg, fs::Permissions::from_mode(0o700)).unwrap();
        fs::copy(brig_binary(), &user.brig).unwrap();
        chown_tree(user.dir(), user.uid, user.gid);
        ok(&user.brig(&["spec", "--rootless"]));
        let text = fs::read(user.dir().join("config.json")).unwrap();
        user.bundle.config = serde_json::from_slice(&text).unwrap();
        user.bundle.config["process"]["terminal"] = json!(false);
        user.bundle.config["root"]["readonly"] = json!(false);
        user.save();
        user
    }

    pub fn dir(&self) -> &Path {
        &self.bundle.dir
    }

    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) {
        f(&mut self.bundle.config);
        self.save();
    }

    pub fn save(&self) {
        let path = self.dir().join("config.json");
        fs::write(
            &path,
            serde_json::to_vec_pretty(&self.bundle.config).unwrap(),
        )
        .unwrap();
        std::os::unix::fs::chown(&path, Some(self.uid), Some(self.gid)).unwrap();
    }

    pub fn set_args(&mut self, args: &[&str]) {
        self.edit(|c| c["process"]["args"] = json!(args));
    }

    /// brig as the user, in the bundle, with the environment a login gives it.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid",
            &self.uid.to_string(),
            "--regid",
            &self.gid.to_string(),
            "--init-groups",
        ])
        .arg(&self.brig)
        .args(args)
        .current_dir(self.dir())
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("HOME", self.dir())
        .env("USER", &self.name)
        .env("XDG_RUNTIME_DIR", &self.xdg);
        cmd
    }

    pub fn brig(&self, args: &[&str]) -> Output {
        output_via_files(self.command(args).stdin(Stdio::null()), self.dir())
    }

    pub fn state_root(&self) -> PathBuf {
        self.xdg.join("brig")
    }

    pub fn status(&self, id: &str) -> Option<String> {
        let out = self.brig(&["state", id]);
        out.status.success().then(|| {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            v["status"].as_str().unwrap().to_string()
        })
    }

    /// After a refused container: nothing of it is left.
    #[track_caller]
    pub fn assert_nothing_left(&self, id: &str) {
        assert!(
            !self.state_root().join(id).exists(),
            "state of {id} left behind"
        );
        assert_eq!(mounts_under(self.dir()), Vec::<String>::new());
    }
}

pub fn rand_suffix() -> usize {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
}

pub fn chown_tree(dir: &Path, uid: u32, gid: u32) {
    let status = Command::new("chown")
        .args(["-R", "-h", &format!("{uid}:{gid}")])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
}

impl Drop for RootlessUser {
    fn drop(&mut self) {
        if let Ok(entries) = fs::read_dir(self.state_root()) {
            for id in entries.flatten() {
                let id = id.file_name().to_string_lossy().into_owned();
                let _ = self.brig(&["delete", "--force", &id]);
            }
        }
        let _lock = USERS.lock().unwrap_or_else(|e| e.into_inner());
        let _ = Command::new("userdel").arg(&self.name).output();
        // userdel drops the user's subordinate ranges; make sure of it.
        for file in ["/etc/subuid", "/etc/subgid"] {
            if let Ok(text) = fs::read_to_string(file) {
                let kept: String = text
                    .lines()
                    .filter(|l| l.split(':').next() != Some(self.name.as_str()))
                    .map(|l| format!("{l}\n"))
                    .collect();
                if kept != text {
                    let _ = fs::write(file, kept);
                }
            }
        }
        // The bundle's own Drop unmounts what is left and removes the directory.
    }
}
