//! The child side of `exec`: join the container's namespaces, become the process the caller
//! described, and exec. Errors go back over the sync channel; a successful exec closes it.

use std::os::fd::RawFd;

use super::channel::{Channel, Message};
use super::exec::Exec;
use crate::error::{Error, Result};
use crate::namespaces::{self, JoinNamespace};

pub struct TenantArgs<'a> {
    pub process: &'a oci_spec::runtime::Process,
    pub personality: Option<oci_spec::runtime::LinuxPersonality>,
    /// The container's seccomp profile: exec'd processes get it too.
    pub seccomp: Option<crate::seccomp::Filters>,
    /// Namespaces to join here (pid and time were joined by the parent), user first.
    pub join: &'a [JoinNamespace],
    pub channel: Channel,
    /// Parent-only descriptors to drop.
    pub close: Vec<RawFd>,
    pub preserve_fds: u32,
}

/// Entry point of the cloned child. Never returns.
pub fn run(args: TenantArgs<'_>) -> ! {
    // Our stderr is the process's: our log lines go to the parent.
    crate::logging::forward_to_parent(args.channel.raw_fd());
    tracing::debug!("child process in init(): joining the container");
    let err = match setup(&args) {
        Ok(exec) => {
            tracing::debug!("setns_init: about to exec {:?}", args.process.args());
            match exec.run() {
                Err(err) => err,
                Ok(never) => match never {},
            }
        }
        Err(err) => err,
    };
    let _ = args.channel.send(&Message::Error(err.to_string()));
    // SAFETY: leave without running the parent's atexit handlers or destructors.
    unsafe { libc::_exit(127) }
}

fn setup(args: &TenantArgs<'_>) -> Result<Exec> {
    for fd in &args.close {
        // SAFETY: our copy of a parent-only descriptor; nothing else in this process uses it.
        unsafe { libc::close(*fd) };
    }
    super::guard::undumpable()?; // issue 12: /proc/<pid>/{exe,fd} out of the container's reach
                                 // If `exec` dies before we are placed in the cgroup, so do we.
                                 // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    match args.channel.recv()? {
        Some(Message::Proceed) => {}
        other => {
            return Err(Error::Other(format!(
                "waiting for the parent, got {other:?}"
            )))
        }
    }
    for ns in args
        .join
        .iter()
        .filter(|ns| !namespaces::applies_to_children(ns.kind))
    {
        namespaces::join(ns)?;
    }
    if args.process.terminal() == Some(true) {
        let size = args
            .process
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16));
        crate::tty::setup_console(size, &args.channel, false)?;
    }
    // SAFETY: prctl with integer arguments only. The process outlives `exec --detach`.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) };
    super::guard::close_on_exec_from(3u32.saturating_add(args.preserve_fds)); // issue 12
    let mut exec = Exec::prepare(
        args.process,
        args.personality.clone(),
        args.seccomp.clone(),
        &args.channel,
    )?;
    exec.preserve_fds = args.preserve_fds;
    Ok(exec)
}
