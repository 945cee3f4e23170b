use std::io::Write;

use anyhow::Result;

use crate::Cli;

/// List containers
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format
    #[arg(short, long, value_parser = ["table", "json"], default_value = "table")]
    pub format: String,
    /// Print only the container ids
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(cli: &Cli, args: &Args) -> Result<u8> {
    let states = libcontainer::state::list(&cli.root)?;
    let mut out = super::stdout();
    if args.quiet {
        for state in &states {
            writeln!(out, "{}", state.id)?;
        }
    } else if args.format == "json" {
        let public: Vec<_> = states.iter().map(|s| s.public()).collect();
        writeln!(out, "{}", serde_json::to_string(&public)?)?;
    } else {
        let rows: Vec<[String; 6]> = states
            .iter()
            .map(|s| {
                let p = s.public();
                [
                    p.id.to_string(),
                    p.pid.to_string(),
                    p.status.to_string(),
                    p.bundle.display().to_string(),
                    p.created.to_string(),
                    p.owner.to_string(),
                ]
            })
            .collect();
        super::write_table(
            &mut out,
            ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
            &rows,
        )?;
    }
    out.flush()?;
    Ok(0)
}
