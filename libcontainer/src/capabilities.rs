//! `process.capabilities`: the five sets, applied with one capset so no ordering trap can bite.

use caps::Capability;
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::error::{Context, Error, Result};

/// Bit masks of the five sets, limited to what the running kernel knows.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub inheritable: u64,
    pub permitted: u64,
    pub ambient: u64,
}

fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

fn mask(set: &Option<Capabilities>, last: u8) -> u64 {
    set.iter().flatten().fold(0u64, |acc, cap| {
        // oci-spec names them without the prefix.
        match format!("CAP_{cap}").parse::<Capability>() {
            Ok(c) if c.index() <= last => acc | (1u64 << c.index()),
            _ => {
                tracing::debug!("capability CAP_{cap} is not known to this kernel: skipped");
                acc
            }
        }
    })
}

impl CapSets {
    pub fn from_spec(caps: &LinuxCapabilities) -> CapSets {
        let last = last_cap();
        CapSets {
            bounding: mask(caps.bounding(), last),
            effective: mask(caps.effective(), last),
            inheritable: mask(caps.inheritable(), last),
            permitted: mask(caps.permitted(), last),
            ambient: mask(caps.ambient(), last),
        }
    }

    /// Drop from the bounding set what it does not list; needs CAP_SETPCAP, so do it first.
    pub fn apply_bounding(&self) -> Result<()> {
        for index in 0..=last_cap() {
            if self.bounding & (1u64 << index) == 0 {
                crate::sys::capability::drop_bounding(index)
                    .ctx(|| format!("drop capability {index} from the bounding set"))?;
            }
        }
        Ok(())
    }

    /// Set effective, permitted and inheritable at once, then the ambient set. `keep` stays
    /// permitted on top of the configured set (never effective, never ambient): a seccomp
    /// profile installed later without no_new_privs needs CAP_SYS_ADMIN.
    pub fn apply(&self, keep: u64) -> Result<()> {
        let wanted = ProcessCaps {
            effective: self.effective,
            permitted: self.permitted | keep,
            inheritable: self.inheritable,
        };
        if let Err(err) = set(wanted) {
            // capset only lowers the permitted set: name what brig itself does not have.
            let missing = get()
                .map(|now| (wanted.permitted | wanted.effective) & !now.permitted)
                .unwrap_or(0);
            if missing != 0 {
                return Err(Error::config(
                    "process.capabilities",
                    format!(
                        "{} not in brig's own permitted set, so it cannot grant them",
                        names(missing).join(", ")
                    ),
                ));
            }
            return Err(err);
        }
        caps::clear(None, caps::CapSet::Ambient)
            .map_err(|e| Error::Other(format!("clear ambient capabilities: {e}")))?;
        for index in 0..64u8 {
            let bit = 1u64 << index;
            if self.ambient & bit == 0 {
                continue;
            }
            // The kernel raises only what is permitted and inheritable; runc's own spec lists
            // ambient caps without inheritable ones, and runc silently goes on. Judged on the
            // configured sets: a kept capability must not reach the program through ambient.
            if self.permitted & self.inheritable & bit == 0 {
                tracing::debug!(
                    "ambient capability {index} not raised: it is not both permitted and inheritable"
                );
                continue;
            }
            match crate::sys::capability::raise_ambient(index) {
                Err(nix::errno::Errno::EPERM) => tracing::debug!(
                    "ambient capability {index} not raised: the kernel refused (securebits)"
                ),
                other => other
                    .map(drop)
                    .ctx(|| format!("raise ambient capability {index}"))?,
            }
        }
        Ok(())
    }

    /// The effective, permitted and inheritable sets `apply` leaves without anything kept.
    pub fn process_caps(&self) -> ProcessCaps {
        ProcessCaps {
            effective: self.effective,
            permitted: self.permitted,
            inheritable: self.inheritable,
        }
    }
}

/// The names of the capabilities in `set`, lowest first.
pub fn names(set: u64) -> Vec<String> {
    let mut known: Vec<Capability> = caps::all()
        .into_iter()
        .filter(|c| set & (1u64 << c.index()) != 0)
        .collect();
    known.sort_by_key(|c| c.index());
    let mut names: Vec<String> = known.iter().map(ToString::to_string).collect();
    let known_bits = known.iter().fold(0u64, |acc, c| acc | (1u64 << c.index()));
    names.extend(
        (0..64)
            .filter(|i| (set & !known_bits) & (1u64 << i) != 0)
            .map(|i| format!("capability {i}")),
    );
    names
}

/// Bit of CAP_SYS_ADMIN in a set.
pub const SYS_ADMIN: u64 = 1 << 21;

/// The thread's effective, permitted and inheritable sets.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProcessCaps {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

/// capget(2) of this thread.
pub fn get() -> Result<ProcessCaps> {
    let sets = crate::sys::capability::get().ctx(|| "read capabilities")?;
    Ok(ProcessCaps {
        effective: sets.effective,
        permitted: sets.permitted,
        inheritable: sets.inheritable,
    })
}

/// capset(2) of this thread, the three sets at once so no ordering trap can bite. Allocates
/// nothing on success: it runs after the seccomp filter is in.
pub fn set(caps: ProcessCaps) -> Result<()> {
    crate::sys::capability::set(crate::sys::capability::Sets {
        effective: caps.effective,
        permitted: caps.permitted,
        inheritable: caps.inheritable,
    })
    .ctx(|| "set capabilities (effective, permitted, inheritable)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_from_names() {
        let caps: LinuxCapabilities = serde_json::from_value(serde_json::json!({
            "bounding": ["CAP_KILL", "CAP_CHOWN"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL"]
        }))
        .unwrap();
        let sets = CapSets::from_spec(&caps);
        assert_eq!(sets.bounding, (1 << 5) | 1);
        assert_eq!(sets.effective, 1 << 5);
        assert_eq!(sets.inheritable, 0);
    }

    #[test]
    fn names_of_a_set() {
        assert_eq!(
            names((1 << 24) | (1 << 5) | (1 << 63)),
            ["CAP_KILL", "CAP_SYS_RESOURCE", "capability 63"]
        );
    }

    #[test]
    fn get_then_set_is_a_no_op() {
        let now = get().unwrap();
        assert_eq!(now.effective & !now.permitted, 0);
        set(now).unwrap();
        assert_eq!(get().unwrap(), now);
    }
}
