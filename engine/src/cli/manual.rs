//! `engine completions` and `engine man`: the shell completion scripts and
//! the manual pages, generated from the command line's definition.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::CommandFactory as _;

use super::args::{usage, Cli};

/// Writes `bytes` to stdout; a closed pipe (`| head`) is not an error.
fn print(bytes: &[u8]) -> Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// `engine completions SHELL`: the completion script on stdout.
pub fn print_completions(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "engine", &mut script);
    print(&script)
}

/// `engine man [COMMAND]`: the manual page of `engine` or of a subcommand
/// (`engine-run(1)`), roff on stdout.
pub fn print_man(command: Option<&str>) -> Result<ExitCode> {
    let mut cli = Cli::command();
    cli.build();
    let page = match command {
        None => cli,
        Some(name) => {
            let Some(sub) = cli.find_subcommand(name) else {
                bail!(usage(format!("engine man: no subcommand `{name}`")));
            };
            let title = match name {
                "run" => "engine-run",
                "completions" => "engine-completions",
                _ => "engine-man",
            };
            sub.clone().name(title).bin_name(format!("engine {name}"))
        }
    };
    let mut roff = Vec::new();
    clap_mangen::Man::new(page).render(&mut roff)?;
    print(&roff)
}
