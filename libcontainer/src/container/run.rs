//! `run`: create + start, then wait for init while forwarding signals to it.

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::create::{create, CreateOptions};
use super::start::{relay_notifications, start_locked};
use crate::error::{Context, Result};

/// Signals a foreground `run` passes on to the container instead of dying of them.
pub(crate) const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGCONT,
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGWINCH,
    Signal::SIGPWR,
];

/// Run a container to completion (or until started, with `detach`) and return the exit code
/// brig should exit with: the container's, or 128+N when a signal N killed it.
pub fn run(options: &CreateOptions, detach: bool, keep: bool) -> Result<i32> {
    let options = &CreateOptions {
        keep_console: !detach,
        ..options.clone()
    };
    let mut mask = SigSet::empty();
    if !detach {
        // Blocked before the clone so no signal or child exit is lost; init unblocks before exec.
        mask.add(Signal::SIGCHLD);
        FORWARDED.iter().for_each(|s| mask.add(*s));
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
            .ctx(|| "block signals")?;
    }
    let mut created = create(options)?;
    let relay = match start_locked(&created.dir, &mut created.state) {
        Ok(relay) => relay,
        Err(err) => {
            drop(created.dir);
            let _ = super::delete(&options.root, &options.id, true);
            return Err(err);
        }
    };
    drop(created.dir); // unlock: kill, state and delete work while we wait
    if detach {
        relay_notifications(relay, &created.state, false)?;
        return Ok(0);
    }
    // The relay runs beside the wait, which must keep forwarding signals meanwhile.
    let relay = relay.map(|relay| {
        let state = created.state.clone();
        std::thread::spawn(move || {
            if let Err(err) = relay_notifications(Some(relay), &state, true) {
                tracing::warn!("{err}");
            }
        })
    });
    let pid = Pid::from_raw(created.state.pid);
    let code = match created.console {
        Some(master) => crate::tty::proxy(master, pid, &mask)?,
        None => wait_forwarding(pid, &mask)?,
    };
    // Init is gone: the relay passes on what is queued and ends.
    if let Some(relay) = relay {
        let _ = relay.join();
    }
    if !keep {
        super::delete(&options.root, &options.id, true)?;
    }
    Ok(code)
}

/// Wait for our child `init`, passing on the signals in `mask`; its exit code, or 128+N.
pub(crate) fn wait_forwarding(init: Pid, mask: &SigSet) -> Result<i32> {
    loop {
        let signal = mask.wait().ctx(|| "wait for signals")?;
        if signal != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(init, signal);
            continue;
        }
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == init => return Ok(code),
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == init => return Ok(128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}
