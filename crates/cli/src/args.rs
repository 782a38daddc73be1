//! The command line, declared with clap. Every command has `--help`; every command that
//! prints data has `--json`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "llama-dashboard",
    version,
    about = "Run a folder of GGUF models as a local LLM platform",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    /// No command prints the help (and succeeds), as `ollama` does.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Folder holding config.toml [default: ~/.config/llama-dashboard]
    #[arg(
        long,
        global = true,
        env = "LLAMA_DASHBOARD_CONFIG_DIR",
        value_name = "DIR"
    )]
    pub config_dir: Option<PathBuf>,
    /// Folder for the database, downloads and saved state [default: ~/.local/share/llama-dashboard]
    #[arg(
        long,
        global = true,
        env = "LLAMA_DASHBOARD_DATA_DIR",
        value_name = "DIR"
    )]
    pub data_dir: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug, -vvv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List, scan and inspect GGUF models
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Show or change the configuration
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List every model found in the configured folders and in Ollama, Hugging Face and LM
    /// Studio stores
    List(JsonFlag),
    /// Scan one folder recursively and show its models and the files skipped, with why
    Scan {
        /// Folder to scan
        path: PathBuf,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Print a model's full GGUF metadata: every key and tensor
    Info {
        /// Model id, alias, or path to a .gguf file
        model: String,
        /// List every tensor instead of a summary per type
        #[arg(long)]
        tensors: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Give a model an alias (a shorter name that works wherever an id does); no alias removes it
    Alias {
        /// Model id or path
        model: String,
        /// The new alias
        alias: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults < file < environment)
    Show(JsonFlag),
    /// Set one key in config.toml, validated before it is written
    Set {
        /// Dotted key, e.g. server.port or models.dirs
        key: String,
        /// New value; lists take comma-separated items or a TOML array
        value: String,
    },
}

#[derive(Debug, Args, Clone, Copy)]
pub struct JsonFlag {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}
