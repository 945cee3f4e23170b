use std::path::PathBuf;

use anyhow::Result;
use libcontainer::container::{self, RestoreOptions};

use super::checkpoint::CriuArgs;
use crate::Cli;

/// Restore a container from a previous checkpoint
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Path to an AF_UNIX socket which will receive the master end of the console's pty
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Path to the root of the bundle directory
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Detach from the container's process
    #[arg(short, long)]
    pub detach: bool,
    /// Specify the file to write the process id to
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Accepted for runc compatibility: brig never makes itself a child subreaper
    #[arg(long)]
    pub no_subreaper: bool,
    /// Accepted for runc compatibility: CRIU restores the mounts, there is no pivot_root
    #[arg(long)]
    pub no_pivot: bool,
    /// Specify an LSM profile to be used during restore in the form of TYPE:NAME
    #[arg(long)]
    pub lsm_profile: Option<String>,
    /// Specify an LSM mount context to be used during restore
    #[arg(long)]
    pub lsm_mount_context: Option<String>,
    /// Container id
    pub id: String,
}

pub fn run(cli: &Cli, args: &Args) -> Result<u8> {
    let options = RestoreOptions {
        root: cli.root.clone(),
        id: args.id.clone(),
        bundle: args.bundle.clone(),
        common: args.criu.common(cli)?,
        console_socket: args.console_socket.clone(),
        pid_file: args
            .pid_file
            .as_ref()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())),
        detach: args.detach,
        lsm_profile: args.lsm_profile.clone().filter(|p| !p.is_empty()),
        lsm_mount_context: args.lsm_mount_context.clone().filter(|p| !p.is_empty()),
        systemd_cgroup: cli.systemd_cgroup,
    };
    let code = container::restore(&options)?;
    Ok(u8::try_from(code).unwrap_or(255))
}
