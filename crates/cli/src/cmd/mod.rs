//! One module per command group; each turns arguments into library calls and output.

mod bench;
mod config;
mod download;
mod mcp;
mod models;
mod ps;
mod run;
mod serve;
mod sessions;

use crate::args::{Cli, Command};
use crate::context::Context;
use std::process::ExitCode;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let command = cli
        .command
        .expect("args::parse makes serve the default command");
    if let Command::Serve(args) = command {
        return serve::run(&cli.global, args);
    }
    // Flags that are config keys join the config's own layers (flags > env > file).
    let flags = match &command {
        Command::Run(args) => run::config_flags(args),
        Command::Bench(args) => bench::config_flags(args),
        Command::Pull(args) | Command::Download(crate::args::DownloadCommand::Pull(args)) => {
            download::config_flags(args)
        }
        _ => Vec::new(),
    };
    let ctx = Context::load(&cli.global, &flags)?;
    match command {
        Command::Serve(_) | Command::Worker => unreachable!("handled above"),
        Command::Models(cmd) => models::run(&ctx, cmd),
        Command::Config(cmd) => config::run(&ctx, cmd),
        Command::Run(args) => run::run(&ctx, args),
        Command::Bench(args) => bench::run(&ctx, args),
        Command::Download(cmd) => download::run(&ctx, cmd),
        Command::Pull(args) => download::pull(&ctx, args),
        Command::List(flag) => models::run(&ctx, crate::args::ModelsCommand::List(flag)),
        Command::Rm(args) => models::remove(&ctx, args),
        Command::Ps(args) => ps::run(&ctx, args),
        Command::Sessions(cmd) => sessions::run(&ctx, cmd),
        Command::Mcp(cmd) => mcp::run(&ctx, cmd),
    }
}
