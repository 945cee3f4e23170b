//! The operations on a container, one file each.

pub mod checkpoint;
pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod exec_cgroup;
mod handoff;
pub mod kill;
pub mod pause;
pub mod restore;
pub mod run;
pub mod start;
pub mod update;

pub use checkpoint::{checkpoint, CheckpointOptions};
pub use create::{create, CreateOptions};
pub use delete::delete;
pub use events::events;
pub use exec::{exec, ExecOptions};
pub use kill::kill;
pub use pause::{pause, resume};
pub use restore::{restore, RestoreOptions};
pub use run::run;
pub use start::start;
pub use update::update;

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::LinuxNamespaceType;

use crate::cgroups;
use crate::error::{Context, Error, Result};
use crate::procfs::stat::process_alive;
use crate::state::State;
use crate::sys::pidfd::{pidfd_open, pidfd_send_signal};

/// A handle on the container's init that cannot be fooled by a recycled pid.
pub(crate) fn pidfd_of_init(state: &State) -> Result<Option<OwnedFd>> {
    let fd = match pidfd_open(state.pid) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
        Err(e) => return Err(e).ctx(|| format!("open pidfd of init {}", state.pid)),
    };
    // The pid is pinned by the fd now: check it is still our init.
    Ok(process_alive(state.pid, state.init_start_time).then_some(fd))
}

pub(crate) fn send_signal(pidfd: &OwnedFd, pid: i32, signal: i32) -> Result<()> {
    match pidfd_send_signal(pidfd.as_fd(), signal) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        Err(e) => Err(e).ctx(|| format!("send signal {signal} to pid {pid}")),
    }
}

/// Host pids of every process of the container: its cgroup's, or without one every process in
/// its own pid namespace (or init alone).
pub fn container_pids(state: &State) -> Vec<i32> {
    let cgroup = cgroups::for_state(&state.cgroup);
    if cgroup.owned() {
        if let Ok(mut pids) = cgroup.pids() {
            pids.sort_unstable();
            return pids;
        }
    }
    let own_pid_ns = state
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_none())
        });
    let init_ns = std::fs::read_link(format!("/proc/{}/ns/pid", state.pid));
    let (true, Ok(init_ns)) = (own_pid_ns, init_ns) else {
        return vec![state.pid];
    };
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|ns| ns == init_ns)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// Send `signal` to every process of the container; frozen first (when it has a freezer) so
/// nothing forks away between listing and signalling.
pub(crate) fn signal_all(state: &State, pidfd: &OwnedFd, signal: i32) -> Result<()> {
    // Only a cgroup of the container's own is frozen: a joined one holds other processes.
    let cgroup = cgroups::for_state(&state.cgroup);
    let freeze = cgroup.owned() && cgroup.can_freeze();
    let was_frozen = freeze && cgroup.frozen();
    if freeze && !was_frozen {
        cgroup.freeze(true)?;
    }
    for pid in container_pids(state)
        .into_iter()
        .filter(|p| *p != state.pid)
    {
        // A vanished pid is fine.
        let _ = crate::sys::signal::kill(pid, signal);
    }
    let sent = send_signal(pidfd, state.pid, signal);
    // A frozen task cannot act on SIGKILL: thaw a container we are killing even if it was paused.
    if freeze && (!was_frozen || signal == libc::SIGKILL) {
        cgroup.freeze(false)?;
    }
    sent
}

/// SIGKILL the whole container and wait until init is gone.
pub(crate) fn kill_all_and_wait(state: &State, timeout: Duration) -> Result<()> {
    let Some(pidfd) = pidfd_of_init(state)? else {
        return Ok(());
    };
    signal_all(state, &pidfd, libc::SIGKILL)?;
    let deadline = Instant::now() + timeout;
    loop {
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(n) if n > 0 => return Ok(()),
            Ok(_) if Instant::now() >= deadline => {
                return Err(Error::Other(format!(
                    "init {} did not die after SIGKILL",
                    state.pid
                )))
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e).ctx(|| format!("wait for init {} to die", state.pid)),
        }
    }
}
