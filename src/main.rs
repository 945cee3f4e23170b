//! brig: an OCI container runtime. The CLI parses runc-compatible flags and hands every
//! behaviour to libcontainer; errors become one log line and a non-zero exit.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![forbid(unsafe_code)]

mod commands;
mod logging;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// `brig -v` prints runc's layout: `brig version X`, then `commit:` and `spec:` lines.
const VERSION: &str = concat!(
    "version ",
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("BRIG_COMMIT"),
    "\nspec: 1.2.1"
);

#[derive(Parser, Debug)]
#[command(name = "brig", version = VERSION, about = "An OCI container runtime", long_about = None)]
#[command(disable_version_flag = true)]
pub struct Cli {
    /// Print the version
    #[arg(short = 'v', long, action = clap::ArgAction::Version)]
    version: Option<bool>,
    /// Directory for the state of containers
    #[arg(long, global = true, default_value = libcontainer::state::DEFAULT_ROOT)]
    root: PathBuf,
    /// Write log lines to this file instead of stderr
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Format of log lines
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log debug lines too
    #[arg(long, global = true)]
    debug: bool,
    /// Make the container's cgroup a transient systemd unit (linux.cgroupsPath is slice:prefix:name)
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility and ignored (true, false or auto)
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    /// Accepted for runc compatibility and ignored: brig has no checkpoint/restore yet
    #[arg(long, global = true)]
    criu: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    Create(commands::create::Args),
    Start(commands::start::Args),
    State(commands::state::Args),
    Kill(commands::kill::Args),
    Delete(commands::delete::Args),
    Events(commands::events::Args),
    Exec(Box<commands::exec::Args>),
    Features(commands::features::Args),
    Run(commands::run::Args),
    List(commands::list::Args),
    Pause(commands::pause::Args),
    Resume(commands::resume::Args),
    Ps(commands::ps::Args),
    Update(Box<commands::update::Args>),
    Spec(commands::spec::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            // runc's words for an unknown command, which scripts look for.
            if let Some(clap::error::ContextValue::String(name)) =
                err.get(clap::error::ContextKind::InvalidSubcommand)
            {
                eprintln!("No help topic for '{name}'");
            }
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(1));
        }
    };
    // Issue 12 (CVE-2019-5736): what puts processes into a container runs from a sealed copy.
    if matches!(
        cli.command,
        Command::Create(_) | Command::Run(_) | Command::Exec(_)
    ) {
        if let Err(err) = libcontainer::process::cloned_binary::ensure_sealed() {
            let _ = writeln!(std::io::stderr(), "error: {err}");
            return ExitCode::FAILURE;
        }
    }
    let format = match cli.log_format {
        LogFormat::Text => logging::Format::Text,
        LogFormat::Json => logging::Format::Json,
    };
    if let Err(err) = logging::init(cli.log.as_deref(), format, cli.debug) {
        // Not eprintln!: it panics when stderr is a closed pipe.
        let _ = writeln!(std::io::stderr(), "error: {err:#}");
        return ExitCode::FAILURE;
    }
    let result = match &cli.command {
        Command::Create(args) => commands::create::run(&cli, args),
        Command::Start(args) => commands::start::run(&cli, args),
        Command::State(args) => commands::state::run(&cli, args),
        Command::Kill(args) => commands::kill::run(&cli, args),
        Command::Delete(args) => commands::delete::run(&cli, args),
        Command::Events(args) => commands::events::run(&cli, args),
        Command::Exec(args) => commands::exec::run(&cli, args),
        Command::Features(args) => commands::features::run(&cli, args),
        Command::Run(args) => commands::run::run(&cli, args),
        Command::List(args) => commands::list::run(&cli, args),
        Command::Pause(args) => commands::pause::run(&cli, args),
        Command::Resume(args) => commands::resume::run(&cli, args),
        Command::Ps(args) => commands::ps::run(&cli, args),
        Command::Update(args) => commands::update::run(&cli, args),
        Command::Spec(args) => commands::spec::run(&cli, args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let message = commands::error_message(&err);
            tracing::error!("{message}");
            // The log line is for the engine; a person at a shell reads stderr.
            if cli.log.is_some() {
                let _ = writeln!(std::io::stderr(), "error: {message}");
            }
            match cli.command {
                // runc: a failed exec exits 255, so callers can tell it from the process's
                // own status (Docker maps it to 126/127).
                Command::Exec(_) => ExitCode::from(255),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
