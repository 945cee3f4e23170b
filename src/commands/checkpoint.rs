use std::path::PathBuf;

use anyhow::Result;
use libcontainer::container::{self, CheckpointOptions};
use libcontainer::criu::Common;

use crate::Cli;

/// The CRIU options `checkpoint` and `restore` share (runc's names and meanings).
#[derive(clap::Args, Debug)]
pub struct CriuArgs {
    /// Path to criu image files: written by checkpoint, read by restore (default: ./checkpoint)
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
    /// Create a namespace, but don't restore its properties
    #[arg(long)]
    pub empty_ns: Vec<String>,
    /// Enable auto deduplication of memory images
    #[arg(long)]
    pub auto_dedup: bool,
    /// Use userfaultfd to lazily restore memory pages
    #[arg(long)]
    pub lazy_pages: bool,
}

impl CriuArgs {
    /// The library's options: paths made absolute, empty strings as not given.
    pub fn common(&self, cli: &Cli) -> Result<Common> {
        Ok(Common {
            criu: criu_path(cli),
            image_path: image_path(self.image_path.as_ref())?,
            work_path: self
                .work_path
                .as_ref()
                .filter(|p| !p.as_os_str().is_empty())
                .map(std::path::absolute)
                .transpose()?,
            tcp_established: self.tcp_established,
            ext_unix_sk: self.ext_unix_sk,
            shell_job: self.shell_job,
            file_locks: self.file_locks,
            lazy_pages: self.lazy_pages,
            auto_dedup: self.auto_dedup,
            manage_cgroups_mode: self.manage_cgroups_mode.clone().filter(|m| !m.is_empty()),
            empty_ns: self.empty_ns.clone(),
        })
    }
}

/// Checkpoint a running container with CRIU
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Path for previous criu image files in pre-dump (relative to --image-path)
    #[arg(long)]
    pub parent_path: Option<PathBuf>,
    /// Leave the process running after checkpointing
    #[arg(long)]
    pub leave_running: bool,
    /// Criu writes \0 to this FD once lazy-pages is ready
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub status_fd: i32,
    /// ADDRESS:PORT of the page server
    #[arg(long)]
    pub page_server: Option<String>,
    /// Dump container's memory information only, leave the container running after this
    #[arg(long)]
    pub pre_dump: bool,
    /// Container id
    pub id: String,
}

/// `--image-path`, or `checkpoint` in the current directory as runc has it.
fn image_path(given: Option<&PathBuf>) -> Result<PathBuf> {
    match given {
        Some(p) if !p.as_os_str().is_empty() => Ok(std::path::absolute(p)?),
        _ => Ok(std::env::current_dir()?.join("checkpoint")),
    }
}

fn criu_path(cli: &Cli) -> PathBuf {
    cli.criu.clone().unwrap_or_else(|| PathBuf::from("criu"))
}

pub fn run(cli: &Cli, args: &Args) -> Result<u8> {
    let options = CheckpointOptions {
        root: cli.root.clone(),
        id: args.id.clone(),
        common: args.criu.common(cli)?,
        parent_path: args
            .parent_path
            .clone()
            .filter(|p| !p.as_os_str().is_empty()),
        leave_running: args.leave_running,
        pre_dump: args.pre_dump,
        status_fd: (args.status_fd >= 0).then_some(args.status_fd),
        page_server: args.page_server.clone().filter(|p| !p.is_empty()),
    };
    container::checkpoint(&options)?;
    Ok(0)
}
