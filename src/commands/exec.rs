use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use libcontainer::container::exec_cgroup::SubCgroups;
use libcontainer::container::{self, ExecOptions};
use oci_spec::runtime::{Capability, Process};

use crate::Cli;

/// Run a new process inside a running container
#[derive(clap::Args, Debug)]
pub struct Args {
    /// process.json describing the whole process (args and flags below are then ignored)
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Do not wait for the process; exit once it runs
    #[arg(short, long)]
    pub detach: bool,
    /// File to write the process's host pid to
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master (with --tty)
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Unix socket that receives a pidfd of the process
    #[arg(long)]
    pub pidfd_socket: Option<PathBuf>,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Working directory in the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Environment variable KEY=VALUE (repeatable)
    #[arg(short, long)]
    pub env: Vec<String>,
    /// UID[:GID] to run as
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional group id (repeatable)
    #[arg(short = 'g', long)]
    pub additional_gids: Vec<u32>,
    /// Capability to add (repeatable)
    #[arg(short, long)]
    pub cap: Vec<String>,
    /// Set no_new_privs for the process
    #[arg(long)]
    pub no_new_privs: bool,
    /// AppArmor profile for the process
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux label for the process
    #[arg(long)]
    pub process_label: Option<String>,
    /// Pass descriptors 3..3+N on to the process
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Exec even when the container is paused
    #[arg(long)]
    pub ignore_paused: bool,
    /// Run in an existing sub-cgroup of the container's: [CONTROLLER[,CONTROLLER]:]PATH
    /// (repeatable, one per controller group)
    #[arg(long)]
    pub cgroup: Vec<String>,
    /// Container id
    pub id: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// The process from the container's own, with the flags applied (runc's rules).
fn process_from_flags(base: Option<Process>, args: &Args) -> Result<Process> {
    if args.command.is_empty() {
        bail!("exec: give a command or --process");
    }
    let mut process = base.unwrap_or_default();
    process.set_args(Some(args.command.clone()));
    process.set_terminal(Some(args.tty));
    let mut env = process.env().clone().unwrap_or_default();
    for entry in &args.env {
        let key = entry.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(entry.clone());
    }
    process.set_env(Some(env));
    if let Some(cwd) = &args.cwd {
        process.set_cwd(cwd.clone());
    }
    if let Some(user) = &args.user {
        let (uid, gid) = match user.split_once(':') {
            Some((u, g)) => (u.parse::<u32>(), g.parse::<u32>()),
            None => (user.parse::<u32>(), Ok(process.user().gid())),
        };
        let (Ok(uid), Ok(gid)) = (uid, gid) else {
            bail!("--user: {user:?} is not UID[:GID]");
        };
        let mut u = process.user().clone();
        u.set_uid(uid);
        u.set_gid(gid);
        process.set_user(u);
    }
    if !args.additional_gids.is_empty() {
        let mut u = process.user().clone();
        // As runc: added to the container process's own additional gids.
        let mut gids = u.additional_gids().clone().unwrap_or_default();
        gids.extend(&args.additional_gids);
        u.set_additional_gids(Some(gids));
        process.set_user(u);
    }
    if !args.cap.is_empty() {
        let mut caps = process.capabilities().clone().unwrap_or_default();
        for name in &args.cap {
            let cap: Capability = serde_json::from_value(serde_json::json!(name))
                .with_context(|| format!("--cap: unknown capability {name:?}"))?;
            let add = |set: &Option<oci_spec::runtime::Capabilities>| {
                let mut set = set.clone().unwrap_or_default();
                set.insert(cap);
                Some(set)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
            caps.set_ambient(add(caps.ambient()));
        }
        process.set_capabilities(Some(caps));
    }
    if args.no_new_privs {
        process.set_no_new_privileges(Some(true));
    }
    if args.apparmor.is_some() {
        process.set_apparmor_profile(args.apparmor.clone());
    }
    if args.process_label.is_some() {
        process.set_selinux_label(args.process_label.clone());
    }
    Ok(process)
}

/// A `--process` file. As in runc, `user` may be left out: it is then uid 0, gid 0.
pub fn run(cli: &Cli, args: &Args) -> Result<u8> {
    let process = match &args.process {
        Some(path) => {
            let text = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
            libcontainer::config::process_from_json(&text, &path.display().to_string())?
        }
        None => {
            let state = libcontainer::state::load(&cli.root, &args.id)?;
            process_from_flags(state.config.process().clone(), args)?
        }
    };
    let code = container::exec(&ExecOptions {
        root: cli.root.clone(),
        id: args.id.clone(),
        process,
        detach: args.detach,
        pid_file: args
            .pid_file
            .as_ref()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())),
        preserve_fds: args.preserve_fds,
        ignore_paused: args.ignore_paused,
        console_socket: args.console_socket.clone(),
        pidfd_socket: args.pidfd_socket.clone(),
        sub_cgroups: SubCgroups::parse(&args.cgroup)?,
    })?;
    Ok(u8::try_from(code).unwrap_or(255))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn additional_gids_add_to_the_containers_own() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cmd {
            #[command(flatten)]
            args: Args,
        }
        let cmd = Cmd::try_parse_from(["exec", "-g", "100", "-g", "65534", "c1", "id"]).unwrap();
        let base: Process = serde_json::from_value(serde_json::json!({
            "args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0, "additionalGids": [5]}
        }))
        .unwrap();
        let p = process_from_flags(Some(base), &cmd.args).unwrap();
        assert_eq!(
            p.user().additional_gids().as_deref(),
            Some(&[5, 100, 65534][..])
        );
    }
}
