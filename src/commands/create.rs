use std::path::PathBuf;

use anyhow::Result;
use libcontainer::container::{self, CreateOptions};

use crate::Cli;

/// Create a container: set it up and leave it waiting for `start`
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub create: CreateFlags,
    /// Container id
    pub id: String,
}

/// Flags `create` and `run` share, as runc names them.
#[derive(clap::Args, Debug, Clone)]
pub struct CreateFlags {
    /// Path to the bundle (the directory holding config.json)
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master of a terminal container
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// File to write the container's host pid to
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives a pidfd of the container's init
    #[arg(long)]
    pub pidfd_socket: Option<PathBuf>,
    /// Use MS_MOVE and chroot instead of pivot_root (for a ramdisk root)
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass descriptors 3..3+N on to the container process
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
}

impl CreateFlags {
    pub fn options(&self, cli: &Cli, id: &str) -> Result<CreateOptions> {
        Ok(CreateOptions {
            root: cli.root.clone(),
            id: id.to_string(),
            bundle: self.bundle.clone(),
            pid_file: self
                .pid_file
                .as_ref()
                .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())),
            console_socket: self.console_socket.clone(),
            pidfd_socket: self.pidfd_socket.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            keep_console: false,
            preserve_fds: self.preserve_fds,
            // systemd socket activation: LISTEN_FDS is meant for us when LISTEN_PID is ours
            // (or unset, as runc accepts).
            listen_fds: std::env::var("LISTEN_FDS")
                .ok()
                .filter(|_| {
                    std::env::var("LISTEN_PID")
                        .map_or(true, |p| p == std::process::id().to_string())
                })
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            // systemd's Type=notify: the container's READY=1 reaches the caller's socket.
            notify_socket: std::env::var("NOTIFY_SOCKET")
                .ok()
                .filter(|s| !s.is_empty()),
            systemd_cgroup: cli.systemd_cgroup,
        })
    }
}

pub fn run(cli: &Cli, args: &Args) -> Result<u8> {
    container::create(&args.create.options(cli, &args.id)?)?;
    Ok(0)
}
