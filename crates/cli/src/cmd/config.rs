//! `config show` and `config set`.

use crate::args::ConfigCommand;
use crate::context::Context;
use crate::output;
use std::process::ExitCode;

pub fn run(ctx: &Context, cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ConfigCommand::Show(flag) => {
            if flag.json {
                output::json(&serde_json::json!({
                    "config_file": ctx.paths.config_file(),
                    "data_dir": ctx.paths.data_dir,
                    "config": ctx.config,
                }))?;
            } else {
                println!("# {}", ctx.paths.config_file().display());
                println!("# data: {}", ctx.paths.data_dir.display());
                print!("{}", ctx.config.to_toml_string());
            }
        }
        ConfigCommand::Set { key, value } => {
            let config = config::set_persisted(&ctx.paths, &key, &value)?;
            let shown = config.get(&key).unwrap_or(value);
            println!("{key} = {shown}  ({})", ctx.paths.config_file().display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
