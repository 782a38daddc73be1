//! `config show` and `config set`.

use crate::args::ConfigCommand;
use crate::context::Context;
use crate::output;
use std::process::ExitCode;

pub fn run(ctx: &Context, cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ConfigCommand::Show(args) => {
            let config = if args.show_secrets {
                ctx.config.clone()
            } else {
                ctx.config.redacted()
            };
            if args.json.json {
                output::json(&serde_json::json!({
                    "config_file": ctx.paths.config_file(),
                    "data_dir": ctx.paths.data_dir,
                    "config": config,
                }))?;
            } else {
                println!("# {}", ctx.paths.config_file().display());
                println!("# data: {}", ctx.paths.data_dir.display());
                print!("{}", config.to_toml_string());
            }
        }
        ConfigCommand::Set { key, value } => {
            let config = config::set_persisted(&ctx.paths, &key, &value)?;
            // Echo what was stored, but never a secret.
            let secret = config::setting(&key).is_some_and(|s| s.secret);
            let shown = match config.get(&key) {
                Some(v) if secret && !v.is_empty() => config::MASK.to_owned(),
                Some(v) => v,
                None => value,
            };
            println!("{key} = {shown}  ({})", ctx.paths.config_file().display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
