//! One module per command group; each turns arguments into library calls and output.

mod bench;
mod config;
mod models;
mod run;

use crate::args::{Cli, Command};
use crate::context::Context;
use std::process::ExitCode;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let Some(command) = cli.command else {
        <Cli as clap::CommandFactory>::command().print_help()?;
        return Ok(ExitCode::SUCCESS);
    };
    let ctx = Context::load(&cli.global)?;
    match command {
        Command::Models(cmd) => models::run(&ctx, cmd),
        Command::Config(cmd) => config::run(&ctx, cmd),
        Command::Run(args) => run::run(&ctx, args),
        Command::Bench(args) => bench::run(&ctx, args),
    }
}
