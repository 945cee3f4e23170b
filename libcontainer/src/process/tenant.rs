//! The child side of `exec`: join the container's namespaces, become the process the caller
//! described, and exec. Errors go back over the sync channel; a successful exec closes it.

use std::os::fd::{AsFd, RawFd};

use nix::sys::prctl;
use nix::sys::signal::Signal;

use super::execve::Exec;
use super::sync::{self, ChildEnd, ToChild};
use crate::error::{Context, Result};
use crate::namespaces::{self, JoinNamespace};
use crate::sys::process::exit_now;

pub struct TenantArgs<'a> {
    pub process: &'a oci_spec::runtime::Process,
    pub personality: Option<oci_spec::runtime::LinuxPersonality>,
    /// The container's seccomp profile: exec'd processes get it too.
    pub seccomp: Option<crate::seccomp::Filters>,
    /// Namespaces to join here (pid and time were joined by the parent), user first.
    pub join: &'a [JoinNamespace],
    pub channel: ChildEnd,
    /// Parent-only descriptors to drop.
    pub close: Vec<RawFd>,
    pub preserve_fds: u32,
}

/// Entry point of the cloned child. Never returns.
pub fn run(args: TenantArgs<'_>) -> ! {
    // Our stderr is the process's: our log lines go to the parent.
    sync::forward_logs_to_parent(&args.channel);
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
    args.channel.report(err);
    exit_now(127)
}

fn setup(args: &TenantArgs<'_>) -> Result<Exec> {
    for fd in &args.close {
        // Our copy of a parent-only descriptor; nothing else in this process uses it.
        let _ = nix::unistd::close(*fd);
    }
    // Issue 12: /proc/<pid>/{exe,fd} out of the container's reach.
    super::guard::undumpable()?;
    // If `exec` dies before we are placed in the cgroup, so do we.
    prctl::set_pdeathsig(Signal::SIGKILL).ctx(|| "set the parent-death signal")?;
    args.channel.expect(ToChild::Proceed)?;
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
        let pty = crate::tty::open_pty(size, false)?;
        args.channel.send_console(pty.master.as_fd())?;
        pty.into_stdio()?;
    }
    // The process outlives `exec --detach`.
    prctl::set_pdeathsig(None).ctx(|| "clear the parent-death signal")?;
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
