//! Lifecycle hooks (runtime-spec 1.2/1.3): who runs them is up to the caller (the runtime
//! namespace for prestart, createRuntime, poststart and poststop; init, in the container's
//! namespaces, for createContainer and startContainer). This module runs one list: the state
//! JSON on stdin, the hook's own args and env, and `timeout` enforced.

use std::io::{Read, Seek, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::{Hook, Spec};

use crate::error::{Context, Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookKind {
    pub const ALL: [HookKind; 6] = [
        HookKind::Prestart,
        HookKind::CreateRuntime,
        HookKind::CreateContainer,
        HookKind::StartContainer,
        HookKind::Poststart,
        HookKind::Poststop,
    ];

    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }
}

/// The hooks of `kind` in `spec`, in order.
pub fn hooks(spec: &Spec, kind: HookKind) -> &[Hook] {
    let Some(hooks) = spec.hooks() else {
        return &[];
    };
    let list = match kind {
        HookKind::Prestart => hooks.prestart(),
        HookKind::CreateRuntime => hooks.create_runtime(),
        HookKind::CreateContainer => hooks.create_container(),
        HookKind::StartContainer => hooks.start_container(),
        HookKind::Poststart => hooks.poststart(),
        HookKind::Poststop => hooks.poststop(),
    };
    list.as_deref().unwrap_or(&[])
}

/// Check what serde cannot: absolute paths, positive timeouts, KEY=VALUE env.
pub fn validate(spec: &Spec) -> Result<()> {
    for kind in HookKind::ALL {
        for (i, hook) in hooks(spec, kind).iter().enumerate() {
            let field = |f: &str| format!("hooks.{}[{i}].{f}", kind.name());
            if !hook.path().is_absolute() {
                return Err(Error::config(
                    field("path"),
                    format!("must be absolute, got {:?}", hook.path()),
                ));
            }
            if hook.timeout().is_some_and(|t| t <= 0) {
                return Err(Error::config(field("timeout"), "must be greater than zero"));
            }
            if let Some(bad) = hook.env().iter().flatten().find(|e| !e.contains('=')) {
                return Err(Error::config(
                    field("env"),
                    format!("{bad:?} is not KEY=VALUE"),
                ));
            }
        }
    }
    Ok(())
}

/// Run every hook of `kind` in order; the first failure stops the list and is returned.
pub fn run_all(spec: &Spec, kind: HookKind, state: &[u8]) -> Result<()> {
    for (index, hook) in hooks(spec, kind).iter().enumerate() {
        run(hook, kind, index, state)?;
    }
    Ok(())
}

/// Run every hook of `kind`, logging failures and going on (poststop's rule).
pub fn run_all_warn(spec: &Spec, kind: HookKind, state: &[u8]) {
    for (index, hook) in hooks(spec, kind).iter().enumerate() {
        if let Err(err) = run(hook, kind, index, state) {
            tracing::warn!("{err}");
        }
    }
}

pub fn run(hook: &Hook, kind: HookKind, index: usize, state: &[u8]) -> Result<()> {
    run_hook(hook, kind, index, state).map_err(|err| match err {
        Error::Hook(_) => err,
        other => Error::Hook(other.to_string()),
    })
}

fn run_hook(hook: &Hook, kind: HookKind, index: usize, state: &[u8]) -> Result<()> {
    // runc's wording ("error running hook #N"), which tools and tests look for.
    let what = format!(
        "error running hook #{index} ({} {})",
        kind.name(),
        hook.path().display()
    );
    // Output goes to an anonymous file, not a pipe: no reader thread, no deadlock on chatter.
    let output = output_file().ctx(|| format!("{what}: make an output file"))?;
    let mut cmd = Command::new(hook.path());
    if let Some((first, rest)) = hook.args().as_deref().and_then(|a| a.split_first()) {
        cmd.arg0(first).args(rest);
    }
    // A hook does not outlive the brig waiting for it, and gets stdin, stdout and stderr only
    // (runc's hooks see no other descriptor): whatever brig holds open stays out of it.
    crate::sys::process::spawn_tied_to_parent(&mut cmd);
    cmd.env_clear();
    for entry in hook.env().iter().flatten() {
        if let Some((key, value)) = entry.split_once('=') {
            cmd.env(key, value);
        }
    }
    let out_fd = output.try_clone().ctx(|| format!("{what}: dup output"))?;
    let err_fd = output.try_clone().ctx(|| format!("{what}: dup output"))?;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::from(out_fd))
        .stderr(Stdio::from(err_fd));
    let mut child = cmd.spawn().ctx(|| what.clone())?;
    // Written from a thread so the timeout covers a hook that never reads a state larger than
    // the pipe buffer. A hook may exit without reading its stdin: that is not a failure, and
    // the thread ends with EPIPE (or with brig).
    let writer = child.stdin.take().map(|mut stdin| {
        let state = state.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&state);
        })
    });
    let timeout = hook.timeout().map(|t| Duration::from_secs(t as u64));
    let status = match wait_with_timeout(&mut child, timeout)? {
        Some(status) => status,
        None => {
            // The writer is left behind: it ends with EPIPE now that the hook is gone.
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Hook(format!(
                "{what}: timed out after {} seconds",
                timeout.unwrap_or_default().as_secs()
            )));
        }
    };
    // The hook has exited, so the writer is done or about to fail with EPIPE; joined so that
    // init goes on single-threaded (setns into a user namespace needs that).
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    if status.success() {
        return Ok(());
    }
    let mut text = String::new();
    let mut output = output;
    let _ = output.rewind();
    let _ = output.take(4096).read_to_string(&mut text);
    let text = text.trim();
    let status = match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig} ({})", signal_name(sig)),
        _ => "failed".to_string(),
    };
    Err(Error::Hook(if text.is_empty() {
        format!("{what}: {status}")
    } else {
        format!("{what}: {status}: {text}")
    }))
}

/// What a signal is called ("bad system call" for SIGSYS: a seccomp kill), lowercase.
fn signal_name(sig: i32) -> String {
    crate::sys::signal::describe(sig)
        .unwrap_or_else(|| format!("signal {sig}"))
        .to_lowercase()
}

fn output_file() -> nix::Result<std::fs::File> {
    let fd =
        nix::sys::memfd::memfd_create(c"brig-hook-output", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
    Ok(std::fs::File::from(fd))
}

/// Wait for `child`, at most `timeout`; `None` when it is still running then.
fn wait_with_timeout(
    child: &mut std::process::Child,
    timeout: Option<Duration>,
) -> Result<Option<std::process::ExitStatus>> {
    let Some(timeout) = timeout else {
        return child.wait().map(Some).ctx(|| "wait for hook");
    };
    let pidfd = crate::sys::pidfd::pidfd_open(child.id() as i32).ctx(|| "open pidfd of hook")?;
    // A timeout past what the clock can represent is no timeout at all.
    let Some(deadline) = Instant::now().checked_add(timeout) else {
        return child.wait().map(Some).ctx(|| "wait for hook");
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return child.try_wait().ctx(|| "wait for hook");
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(n) if n > 0 => return child.wait().map(Some).ctx(|| "wait for hook"),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e).ctx(|| "wait for hook"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(value: serde_json::Value) -> Hook {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn passes_state_args_and_env() {
        let dir = std::env::temp_dir().join(format!("brig-hooks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let h = hook(serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("echo \"$0 $1 $FOO\" > {0}; cat >> {0}", out.display()), "zero", "one"],
            "env": ["FOO=bar"]
        }));
        run(&h, HookKind::Poststop, 0, b"{\"status\":\"stopped\"}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "zero one bar\n{\"status\":\"stopped\"}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failure_names_the_hook_and_shows_its_output() {
        let h = hook(
            serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "echo broken >&2; exit 3"]}),
        );
        let err = run(&h, HookKind::CreateRuntime, 2, b"{}")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "error running hook #2 (createRuntime /bin/sh): exit status 3: broken"
        );
    }

    #[test]
    fn timeout_kills_the_hook() {
        let h =
            hook(serde_json::json!({"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}));
        let start = Instant::now();
        let err = run(&h, HookKind::Prestart, 0, b"{}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("timed out after 1 seconds"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn validation_names_the_field() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0",
            "hooks": {"poststart": [{"path": "/bin/true"}, {"path": "true"}]}
        }))
        .unwrap();
        assert!(validate(&spec)
            .unwrap_err()
            .to_string()
            .starts_with("hooks.poststart[1].path"));
    }
}
