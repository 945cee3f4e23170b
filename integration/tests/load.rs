//! Load: many short containers back to back and side by side, every one exits 0, and nothing
//! is left afterwards: no state, no cgroup on any hierarchy, no mount, no process.
//!
//! Each container has a bundle directory of its own (config.json only, `root.path` pointing at
//! one shared read-only rootfs) so that each gets its own relative `cgroupsPath`, named with a
//! prefix unique to the test: the leftover checks look for that prefix. The tests of this file
//! run one at a time: they measure brig, not the scheduler.

use std::path::{Path, PathBuf};
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::Instant;

use integration::*;
use serde_json::json;

static SERIAL: Mutex<()> = Mutex::new(());

struct Load {
    bundle: Bundle,
    /// In every container's id and cgroup name, and in nothing else on the host.
    prefix: String,
}

impl Load {
    fn new(name: &str) -> Load {
        let mut bundle = Bundle::new(name);
        bundle.set_args(&["true"]);
        let prefix = unique_id(&format!("brig-load-{name}"));
        Load { bundle, prefix }
    }

    /// The bundle of container `i`: its id, and the directory holding its config.json.
    fn container(&self, i: usize) -> (String, PathBuf) {
        let id = format!("{}-{i}", self.prefix);
        let dir = self.bundle.dir.join("bundles").join(&id);
        std::fs::create_dir_all(&dir).unwrap();
        let mut config = self.bundle.config.clone();
        config["root"]["path"] = json!(self.bundle.rootfs());
        config["linux"]["cgroupsPath"] = json!(id);
        std::fs::write(
            dir.join("config.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        (id, dir)
    }

    /// `brig run` of container `i`; its exit status and stderr.
    fn run(&self, i: usize) -> (Option<i32>, String) {
        let (id, dir) = self.container(i);
        let out = self
            .bundle
            .brig(&["run", "--bundle", dir.to_str().unwrap(), &id]);
        (out.status.code(), stderr(&out))
    }

    /// create, start, wait for `stopped`, delete: as separate commands, as engines do. The
    /// init pid, or the first step that failed.
    fn create_start_delete(&self, i: usize) -> Result<i64, String> {
        let (id, dir) = self.container(i);
        let step = |args: &[&str]| {
            let out = self.bundle.brig(args);
            if out.status.success() {
                Ok(())
            } else {
                Err(format!("{args:?}: {:?} {}", out.status, stderr(&out)))
            }
        };
        step(&["create", "--bundle", dir.to_str().unwrap(), &id])?;
        let pid = self.bundle.state(&id).ok_or("no state after create")?["pid"]
            .as_i64()
            .ok_or("no pid in state")?;
        step(&["start", &id])?;
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while self.bundle.status(&id).as_deref() != Some("stopped") {
            if Instant::now() > deadline {
                return Err(format!("{id} did not stop: {:?}", self.bundle.state(&id)));
            }
            thread::sleep(std::time::Duration::from_millis(5));
        }
        step(&["delete", &id])?;
        Ok(pid)
    }

    /// Everything the containers could have left, as readable lines (empty: nothing).
    fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        for id in self.bundle.containers() {
            left.push(format!(
                "state directory {}",
                self.bundle.root.join(id).display()
            ));
        }
        for dir in cgroup_parents() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&self.prefix)
                {
                    left.push(format!("cgroup {}", entry.path().display()));
                }
            }
        }
        let ours = [
            self.bundle.dir.to_string_lossy().into_owned(),
            self.prefix.clone(),
        ];
        for line in std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
        {
            if ours.iter().any(|s| line.contains(s.as_str())) {
                left.push(format!("mount {line}"));
            }
        }
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for pid in children.split_whitespace() {
                left.push(format!("child process {pid}"));
            }
        }
        // Any process on the host still in one of the containers' cgroups.
        for proc in std::fs::read_dir("/proc").unwrap().flatten() {
            let name = proc.file_name().to_string_lossy().into_owned();
            if name.parse::<u32>().is_err() {
                continue;
            }
            let cgroup = std::fs::read_to_string(proc.path().join("cgroup")).unwrap_or_default();
            if cgroup.contains(&self.prefix) && pid_alive(name.parse().unwrap()) {
                left.push(format!("process {name} in cgroup {}", cgroup.trim()));
            }
        }
        left
    }
}

/// Where a relative cgroupsPath can land on this host: below our own cgroup (v1 hierarchies
/// and a hybrid host's unified one) or beside it (v2), on every mounted hierarchy.
fn cgroup_parents() -> Vec<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let mut dirs = Vec::new();
    for line in std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
    {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (root, mount_point) = (fields[3], Path::new(fields[4]));
        let fstype = fields[dash + 1];
        let options = fields.get(dash + 3).copied().unwrap_or("");
        // This hierarchy's line in /proc/self/cgroup: `0::` for cgroup2, else the one naming
        // the mount's controllers (`name=systemd` included).
        let path = own.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
            let hit = match fstype {
                "cgroup2" => list.is_empty(),
                "cgroup" => {
                    !list.is_empty() && list.split(',').all(|c| options.split(',').any(|o| o == c))
                }
                _ => false,
            };
            hit.then(|| path.to_string())
        });
        let Some(path) = path else { continue };
        let within = Path::new(&path)
            .strip_prefix(root)
            .unwrap_or(Path::new(""))
            .to_path_buf();
        let dir = mount_point.join(within);
        if let Some(parent) = dir.parent().filter(|p| p.starts_with(mount_point)) {
            dirs.push(parent.to_path_buf());
        }
        dirs.push(dir);
    }
    assert!(!dirs.is_empty(), "no cgroup hierarchy found");
    dirs
}

/// Run `f(i)` for 0..n on n threads, released together.
fn parallel<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let f = &f;
    let start = &Barrier::new(n);
    thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                s.spawn(move || {
                    start.wait();
                    f(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn failures(results: &[(Option<i32>, String)]) -> Vec<String> {
    results
        .iter()
        .enumerate()
        .filter(|(_, (code, _))| *code != Some(0))
        .map(|(i, (code, err))| format!("#{i}: exit {code:?}: {err}"))
        .collect()
}

#[test]
fn a_hundred_containers_back_to_back() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut load = Load::new("seq");
    // The exit status is the container's own: a zero below is `true` having run.
    load.bundle.set_args(&["sh", "-c", "exit 3"]);
    assert_eq!(load.run(100).0, Some(3));
    load.bundle.set_args(&["true"]);
    let started = Instant::now();
    let results: Vec<_> = (0..100).map(|i| load.run(i)).collect();
    eprintln!("100 sequential runs: {:?}", started.elapsed());
    let failed = failures(&results);
    assert!(
        failed.is_empty(),
        "{} of 100 failed: {failed:#?}",
        failed.len()
    );
    let left = load.leftovers();
    assert!(left.is_empty(), "left behind: {left:#?}");
}

#[test]
fn twenty_containers_at_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let load = Load::new("par");
    let started = Instant::now();
    let results = parallel(20, |i| load.run(i));
    eprintln!("20 parallel runs: {:?}", started.elapsed());
    let failed = failures(&results);
    assert!(
        failed.is_empty(),
        "{} of 20 failed: {failed:#?}",
        failed.len()
    );
    let left = load.leftovers();
    assert!(left.is_empty(), "left behind: {left:#?}");
}

#[test]
fn twenty_create_start_delete_at_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let load = Load::new("csd");
    // The checks see what they look for: a created container shows in every one.
    let (id, dir) = load.container(99);
    ok(&load
        .bundle
        .brig(&["create", "--bundle", dir.to_str().unwrap(), &id]));
    let seen = load.leftovers();
    for kind in ["state directory", "cgroup", "process"] {
        assert!(
            seen.iter().any(|l| l.starts_with(kind)),
            "a created container shows no {kind}: {seen:#?}"
        );
    }
    let hierarchies = cgroup_parents().len();
    eprintln!("{hierarchies} places checked; created container: {seen:#?}");
    ok(&load.bundle.brig(&["delete", "--force", &id]));
    let started = Instant::now();
    let results = parallel(20, |i| load.create_start_delete(i));
    eprintln!("20 parallel create/start/delete: {:?}", started.elapsed());
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of 20 failed: {failed:#?}",
        failed.len()
    );
    let alive: Vec<_> = results
        .iter()
        .flatten()
        .filter(|pid| pid_alive(**pid))
        .collect();
    assert!(alive.is_empty(), "container inits still alive: {alive:?}");
    let left = load.leftovers();
    assert!(left.is_empty(), "left behind: {left:#?}");
}
