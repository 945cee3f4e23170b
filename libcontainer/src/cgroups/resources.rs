//! Writing `linux.resources` into the container's cgroup: everything checked before the first
//! write (a `Plan`), then one write per setting, each failure naming the field and the file.
//! The per-version rules are in [`super::v1`] and [`super::v2`], device rules in
//! [`super::devices`] and [`super::bpf`].

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxResources};

use super::fs::Cgroup;
use super::{bpf, devices, v1, v2};
use crate::error::{Context, Error, Result};

/// Write `linux.resources` into the container's cgroup: device rules (`spec_devices`, the
/// config's `linux.devices`, only decide which default rules they replace) and limits.
/// `update` says whether this is `brig update` (then `memory.checkBeforeUpdate` applies and
/// device rules are rewritten only when given). Everything is checked before the first write;
/// when a write still fails, the error says which settings were applied before it.
pub(crate) fn apply(
    cg: &Cgroup,
    resources: Option<&LinuxResources>,
    spec_devices: &[LinuxDevice],
    update: bool,
) -> Result<()> {
    let mut plan = Plan::default();
    if let Some(r) = resources {
        validate(r)?;
    }
    let devices_given = resources.is_some_and(|r| r.devices().is_some());
    if !update || devices_given {
        let rules = devices::rule_list(resources, spec_devices)?;
        if cg.is_v2() {
            if let Some(h) = cg.unified() {
                let dir = h.path.clone();
                plan.step("devices", move || bpf::install_device_filter(&dir, &rules));
            }
        } else {
            v1::plan_devices(&mut plan, cg, rules)?;
        }
    }
    if let Some(r) = resources {
        if cg.is_v2() {
            if let Some(h) = cg.unified() {
                v2::plan_limits(&mut plan, h, r, update)?;
            }
        } else {
            v1::plan_limits(&mut plan, cg, r)?;
        }
    }
    plan.run(update)
}

/// Checks that hold on every cgroup version, before anything is written.
fn validate(r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        for (field, value) in [
            ("limit", m.limit()),
            ("reservation", m.reservation()),
            ("swap", m.swap()),
            ("kernel", m.kernel()),
            ("kernelTCP", m.kernel_tcp()),
        ] {
            if value.is_some_and(|v| v < -1) {
                return Err(Error::config(
                    format!("linux.resources.memory.{field}"),
                    format!(
                        "{} is neither -1 (no limit) nor a number of bytes",
                        value.unwrap_or_default()
                    ),
                ));
            }
        }
        if let Some(v) = m.swappiness().filter(|v| *v != u64::MAX && *v > 100) {
            return Err(Error::config(
                "linux.resources.memory.swappiness",
                format!("{v} is above 100"),
            ));
        }
    }
    Ok(())
}

/// A set value, with runc's reading of zero: for most resource fields 0 (or "") means "not
/// set" (Docker and containerd send every field, unset ones as zero).
pub(crate) fn set<T: Default + PartialEq + Copy>(v: Option<T>) -> Option<T> {
    v.filter(|v| *v != T::default())
}

type StepFn = Box<dyn FnOnce() -> Result<()>>;

/// The writes for a whole `linux.resources`, checked (controllers there, files present,
/// values valid) before the first one is made.
#[derive(Default)]
pub(crate) struct Plan {
    steps: Vec<(String, StepFn)>,
}

impl Plan {
    /// One step that may do more than a plain write (ordering, retries); `field` names it.
    pub(crate) fn step(&mut self, field: &str, f: impl FnOnce() -> Result<()> + 'static) {
        self.steps.push((field.to_string(), Box::new(f)));
    }

    /// Write `value` to `dir/file`; the file must exist now.
    pub(crate) fn write(&mut self, dir: &Path, file: &str, value: &str, field: &str) -> Result<()> {
        let w = Write::new(dir, file, value, field)?;
        self.step(field, move || w.run());
        Ok(())
    }

    fn run(self, update: bool) -> Result<()> {
        let mut applied: Vec<String> = Vec::new();
        for (field, step) in self.steps {
            if let Err(e) = step() {
                if !update || applied.is_empty() {
                    return Err(e);
                }
                applied.dedup();
                return Err(Error::Other(format!(
                    "{e} (applied before it: {}; nothing after it)",
                    applied.join(", ")
                )));
            }
            applied.push(field);
        }
        Ok(())
    }
}

/// One cgroup file write, its file known to exist.
pub(crate) struct Write {
    pub path: PathBuf,
    pub value: String,
    pub field: String,
}

impl Write {
    pub(crate) fn new(dir: &Path, file: &str, value: &str, field: &str) -> Result<Write> {
        let path = dir.join(file);
        if !path.exists() {
            return Err(missing(&path, field));
        }
        Ok(Write {
            path,
            value: value.to_string(),
            field: field.to_string(),
        })
    }

    pub(crate) fn try_run(&self) -> std::io::Result<()> {
        write_cgroup_file(&self.path, &self.value)
    }

    pub(crate) fn run(&self) -> Result<()> {
        self.try_run().ctx(|| {
            format!(
                "linux.resources.{}: write {:?} to {}",
                self.field,
                self.value,
                self.path.display()
            )
        })
    }
}

/// A resource whose cgroup file the kernel does not have.
pub(crate) fn missing(path: &Path, field: &str) -> Error {
    Error::config(
        format!("linux.resources.{field}"),
        format!(
            "{} does not exist: this kernel has no such cgroup file",
            path.display()
        ),
    )
}

/// Write a cgroup file that must exist: never O_CREAT (a missing file is reported as
/// missing, not as "permission denied" from creating it in cgroupfs).
pub(crate) fn write_cgroup_file(path: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(value.as_bytes())
}
