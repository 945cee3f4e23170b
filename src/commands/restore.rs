use std::path::PathBuf;

use anyhow::Result;
use libcontainer::container::{self, RestoreOptions};
use libcontainer::criu::Common;

use super::checkpoint::{criu_path, image_path};
use crate::Cli;

/// Restore a container from a previous checkpoint
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Path to an AF_UNIX socket which will receive the master end of the console's pty
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Path to criu image files for restoring (default: ./checkpoint)
    #[arg(long)]
    pub image_path: Option<PathBuf>,
    /// Path for saving work files and logs
    #[arg(long)]
    pub work_path: Option<PathBuf>,
    /// Allow open tcp connections
    #[arg(long)]
    pub tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long)]
    pub ext_unix_sk: bool,
    /// Allow shell jobs
    #[arg(long)]
    pub shell_job: bool,
    /// Handle file locks, for safety
    #[arg(long)]
    pub file_locks: bool,
    /// Cgroups mode: 'soft' (default), 'full' and 'strict'
    #[arg(long)]
    pub manage_cgroups_mode: Option<String>,
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
    /// Create a namespace, but don't restore its properties
    #[arg(long)]
    pub empty_ns: Vec<String>,
    /// Enable auto deduplication of memory images
    #[arg(long)]
    pub auto_dedup: bool,
    /// Use userfaultfd to lazily restore memory pages
    #[arg(long)]
    pub lazy_pages: bool,
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
        common: Common {
            criu: criu_path(cli),
            image_path: image_path(args.image_path.as_ref())?,
            work_path: args
                .work_path
                .as_ref()
                .filter(|p| !p.as_os_str().is_empty())
                .map(std::path::absolute)
                .transpose()?,
            tcp_established: args.tcp_established,
            ext_unix_sk: args.ext_unix_sk,
            shell_job: args.shell_job,
            file_locks: args.file_locks,
            lazy_pages: args.lazy_pages,
            auto_dedup: args.auto_dedup,
            manage_cgroups_mode: args.manage_cgroups_mode.clone().filter(|m| !m.is_empty()),
            empty_ns: args.empty_ns.clone(),
        },
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
