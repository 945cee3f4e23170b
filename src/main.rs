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
    /// Directory for the state of containers (default /run/brig for root, else
    /// $XDG_RUNTIME_DIR/brig)
    #[arg(long = "root", global = true)]
    root_flag: Option<PathBuf>,
    /// `--root` or its default, resolved once the flags are parsed.
    #[arg(skip)]
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
    /// `spec --rootless` writes a rootless config (and `pull REF BUNDLE`, whose default is the
    /// caller's: rootless when not root); otherwise accepted for runc compatibility and ignored
    /// (brig tells rootless from the caller's ids by itself)
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    /// Path to the criu binary for checkpoint and restore (default: criu in PATH)
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
    #[cfg(feature = "image")]
    Pull(Box<commands::pull::Args>),
    #[cfg(feature = "image")]
    Images(commands::images::Args),
    #[cfg(feature = "image")]
    Rmi(commands::rmi::Args),
    Checkpoint(Box<commands::checkpoint::Args>),
    Restore(Box<commands::restore::Args>),
}

/// `--root`, or runc's default: /run/brig for root, `$XDG_RUNTIME_DIR/brig` for anyone else
/// (and for root in a user namespace that is not the host's, as under rootless podman).
fn default_root(flag: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(root) = flag {
        return Ok(root);
    }
    if !libcontainer::rootless::honor_xdg_runtime_dir() {
        return Ok(PathBuf::from(libcontainer::state::DEFAULT_ROOT));
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => Ok(PathBuf::from(dir).join("brig")),
        None if !libcontainer::rootless::unprivileged() => {
            Ok(PathBuf::from(libcontainer::state::DEFAULT_ROOT))
        }
        None => Err(format!(
            "--root: not given, and XDG_RUNTIME_DIR is not set: brig run by uid {} needs a \
             state directory it owns (set XDG_RUNTIME_DIR or pass --root)",
            libcontainer::rootless::euid()
        )),
    }
}

/// Commands whose callers write long flags with one dash, as Go's flag parsing (and so runc)
/// accepts: containerd's shim runs `restore -no-subreaper ...`.
const SINGLE_DASH_COMMANDS: &[&str] = &["checkpoint", "restore"];

/// `-name` and `-name=value` become `--name...` when `name` is a long flag of the command (or
/// a global one), for the commands in [`SINGLE_DASH_COMMANDS`].
fn single_dash_long_flags(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    use clap::CommandFactory;
    let Some(position) = args.iter().position(|a| {
        a.to_str()
            .is_some_and(|a| SINGLE_DASH_COMMANDS.contains(&a))
    }) else {
        return args;
    };
    // Built only here: clap's whole command tree is a second one for every other command
    // (issue 18: heap and CPU on every start).
    let command = Cli::command();
    let name = args[position].to_str().unwrap_or_default().to_string();
    let longs: Vec<String> = command
        .get_arguments()
        .chain(
            command
                .find_subcommand(&name)
                .into_iter()
                .flat_map(|s| s.get_arguments()),
        )
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect();
    args.into_iter()
        .enumerate()
        .map(|(i, arg)| {
            let Some(text) = arg.to_str().filter(|_| i > position) else {
                return arg;
            };
            match text.strip_prefix('-') {
                Some(rest) if !rest.starts_with('-') && rest.len() > 1 => {
                    let flag = rest.split('=').next().unwrap_or_default();
                    if longs.iter().any(|l| l == flag) {
                        format!("-{text}").into()
                    } else {
                        arg
                    }
                }
                _ => arg,
            }
        })
        .collect()
}

/// The long flag whose value is missing, when that is what `err` is about.
fn missing_value(err: &clap::Error) -> Option<String> {
    if err.kind() != clap::error::ErrorKind::InvalidValue {
        return None;
    }
    let (
        Some(clap::error::ContextValue::String(arg)),
        Some(clap::error::ContextValue::String(value)),
    ) = (
        err.get(clap::error::ContextKind::InvalidArg),
        err.get(clap::error::ContextKind::InvalidValue),
    )
    else {
        return None;
    };
    if !value.is_empty() {
        return None;
    }
    arg.split_whitespace()
        .next()
        .and_then(|a| a.strip_prefix("--"))
        .map(str::to_string)
}

/// The commands that put processes into a container: they run from a sealed binary.
const SEALED_COMMANDS: [&str; 3] = ["create", "run", "exec"];

/// Issue 18: re-execute from the sealed binary before the flags are parsed when any argument
/// names a sealed command, so the first process does no more than that (parsing costs it
/// page faults and allocations the re-executed one pays again). A false match (a container
/// named `run`) costs one re-exec; a failure is left to the check after parsing, which
/// reports it only for the commands that need it.
fn seal_early() {
    let sealed = std::env::args_os()
        .skip(1)
        .any(|a| SEALED_COMMANDS.iter().any(|c| a == *c));
    if sealed {
        let _ = libcontainer::process::cloned_binary::ensure_sealed();
    }
}

fn main() -> ExitCode {
    seal_early();
    let mut cli = match Cli::try_parse_from(single_dash_long_flags(std::env::args_os().collect())) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            // Go's words for a flag without its value: podman probes `restore
            // --lsm-mount-context` for them.
            if let Some(name) = missing_value(&err) {
                eprintln!("flag needs an argument: -{name}");
            }
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
    if !matches!(cli.command, Command::Spec(_) | Command::Features(_)) {
        match default_root(cli.root_flag.take()) {
            Ok(root) => cli.root = root,
            Err(message) => {
                let _ = writeln!(std::io::stderr(), "error: {message}");
                return ExitCode::FAILURE;
            }
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
        #[cfg(feature = "image")]
        Command::Pull(args) => commands::pull::run(&cli, args),
        #[cfg(feature = "image")]
        Command::Images(args) => commands::images::run(&cli, args),
        #[cfg(feature = "image")]
        Command::Rmi(args) => commands::rmi::run(&cli, args),
        Command::Checkpoint(args) => commands::checkpoint::run(&cli, args),
        Command::Restore(args) => commands::restore::run(&cli, args),
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
