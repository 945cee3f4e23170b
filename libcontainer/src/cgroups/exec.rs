//! Where `exec` puts its process: the container's cgroup, a sub-cgroup of it (`exec --cgroup
//! [CONTROLLERS:]PATH`, as runc), or on cgroup v2 init's own cgroup when the container's
//! cannot take processes any more (it enabled a domain controller for its children).

use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;

use super::fs::Cgroup;
use super::manager::Manager;
use crate::error::{Context, Error, Result};

/// `--cgroup` values, parsed as runc does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubCgroups {
    /// The container's own cgroup.
    None,
    /// One path below the container's cgroup in every hierarchy (`--cgroup PATH`).
    All(String),
    /// Per controller (`--cgroup cpu,cpuacct:PATH --cgroup memory:PATH`).
    PerController(Vec<(String, String)>),
}

impl SubCgroups {
    pub fn parse(args: &[String]) -> Result<SubCgroups> {
        if args.is_empty() {
            return Ok(SubCgroups::None);
        }
        let mut per_controller = Vec::new();
        for arg in args {
            let parts: Vec<&str> = arg.splitn(3, ':').collect();
            match parts.as_slice() {
                [path] if args.len() == 1 => return Ok(SubCgroups::All(path.to_string())),
                [_] => {
                    return Err(Error::option(
                        "sub_cgroups",
                        format!("invalid argument {arg:?} (missing <controller>: prefix)"),
                    ))
                }
                [controllers, path] => per_controller.extend(
                    controllers
                        .split(',')
                        .map(|c| (c.to_string(), path.to_string())),
                ),
                _ => {
                    return Err(Error::option(
                        "sub_cgroups",
                        format!("invalid argument {arg:?}"),
                    ))
                }
            }
        }
        Ok(SubCgroups::PerController(per_controller))
    }
}

/// `base/sub`, cleaned lexically; refused when it leaves `base`.
fn below(base: &Path, sub: &str) -> Result<PathBuf> {
    let mut path = base.to_path_buf();
    for component in Path::new(sub).components() {
        match component {
            Component::Normal(name) => path.push(name),
            Component::ParentDir => {
                path.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    if !path.starts_with(base) {
        return Err(Error::option(
            "sub_cgroups",
            format!("{sub} is not a sub cgroup path"),
        ));
    }
    Ok(path)
}

/// The directory to join in each of the container's hierarchies.
pub fn targets(cgroup: &Cgroup, sub: &SubCgroups) -> Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = cgroup.hierarchies.iter().map(|h| h.path.clone()).collect();
    match sub {
        SubCgroups::None => {}
        SubCgroups::All(add) => {
            for (path, h) in paths.iter_mut().zip(&cgroup.hierarchies) {
                *path = below(&h.path, add)?;
            }
        }
        SubCgroups::PerController(list) => {
            for (controller, add) in list {
                let index = cgroup
                    .hierarchies
                    .iter()
                    .position(|h| h.controllers.iter().any(|c| c == controller))
                    .ok_or_else(|| {
                        Error::option(
                            "sub_cgroups",
                            format!("unknown controller {controller} in SubCgroupPaths"),
                        )
                    })?;
                paths[index] = below(&cgroup.hierarchies[index].path, add)?;
            }
        }
    }
    Ok(paths)
}

fn write_procs(dir: &Path, pid: i32) -> Result<()> {
    let file = dir.join("cgroup.procs");
    fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .and_then(|mut f| f.write_all(pid.to_string().as_bytes()))
        .ctx(|| {
            format!(
                "error adding pid {pid} to cgroups: write {}",
                file.display()
            )
        })
}

/// Put the exec'd `pid` in place (the cgroupfs driver's [`Manager::enter_exec`]). Without `--cgroup`, a unified cgroup that refuses it
/// (EBUSY: it has a domain controller enabled for children now) is replaced by init's own
/// cgroup, as runc does.
pub fn enter(cgroup: &Cgroup, sub: &SubCgroups, pid: i32, init: i32) -> Result<()> {
    if cgroup.hierarchies.is_empty() {
        return Ok(());
    }
    if *sub != SubCgroups::None {
        for path in targets(cgroup, sub)? {
            write_procs(&path, pid)?;
        }
        return Ok(());
    }
    match cgroup.apply(pid, false) {
        Err(err) if err.errno() == Some(Errno::EBUSY) => {
            let Some(dir) = init_unified_cgroup(init) else {
                return Err(err);
            };
            tracing::debug!(
                "adding pid {pid} to the container's cgroup failed ({err}): joining init's {}",
                dir.display()
            );
            for h in cgroup.hierarchies.iter().filter(|h| !h.unified) {
                write_procs(&h.path, pid)?;
            }
            write_procs(&dir, pid)
        }
        other => other,
    }
}

/// Init's directory in the unified hierarchy, from /proc/PID/cgroup.
fn init_unified_cgroup(init: i32) -> Option<PathBuf> {
    let own = fs::read_to_string(format!("/proc/{init}/cgroup")).ok()?;
    let relative = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    let mounts = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let (point, root) = super::detect::unified_mount(&mounts)?;
    let relative = Path::new(relative)
        .strip_prefix(&root)
        .ok()?
        .to_string_lossy()
        .into_owned();
    below(&point, &relative).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::Hierarchy;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn hierarchy(controllers: &[&str], path: &str) -> Hierarchy {
        Hierarchy {
            controllers: args(controllers),
            path: PathBuf::from(path),
            created: true,
            created_parents: 0,
            unified: false,
        }
    }

    #[test]
    fn flags_parse_like_runc() {
        assert_eq!(SubCgroups::parse(&[]).unwrap(), SubCgroups::None);
        assert_eq!(
            SubCgroups::parse(&args(&["foo"])).unwrap(),
            SubCgroups::All("foo".into())
        );
        assert_eq!(
            SubCgroups::parse(&args(&["memory:a", "cpu,cpuacct:b"])).unwrap(),
            SubCgroups::PerController(vec![
                ("memory".into(), "a".into()),
                ("cpu".into(), "b".into()),
                ("cpuacct".into(), "b".into()),
            ])
        );
        assert!(SubCgroups::parse(&args(&["a", "memory:b"])).is_err());
        assert!(SubCgroups::parse(&args(&["a:b:c"])).is_err());
    }

    #[test]
    fn targets_stay_below_the_container() {
        let cg = Cgroup {
            hierarchies: vec![
                hierarchy(&["memory"], "/sys/fs/cgroup/memory/c"),
                hierarchy(&["cpu", "cpuacct"], "/sys/fs/cgroup/cpu,cpuacct/c"),
            ],
            systemd: None,
        };
        let t = |sub: &[&str]| targets(&cg, &SubCgroups::parse(&args(sub)).unwrap());
        assert_eq!(
            t(&["x/../y"]).unwrap(),
            vec![
                PathBuf::from("/sys/fs/cgroup/memory/c/y"),
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/c/y")
            ]
        );
        assert_eq!(
            t(&["/"]).unwrap(),
            vec![
                PathBuf::from("/sys/fs/cgroup/memory/c"),
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/c")
            ]
        );
        assert_eq!(
            t(&["cpuacct:s"]).unwrap()[1],
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/c/s")
        );
        let err = t(&[".."]).unwrap_err().to_string();
        assert!(err.contains(" .. is not a sub cgroup path"), "{err}");
        let err = t(&["whaaat:/"]).unwrap_err().to_string();
        assert!(err.contains("unknown controller whaaat"), "{err}");
    }
}
