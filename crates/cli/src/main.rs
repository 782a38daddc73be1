//! `llama-dashboard`: the binary. Parses the command line and hands off to one module per
//! command group under `cmd/`. Everything with logic lives in the library crates; this
//! crate only wires them together and formats output.

mod args;
mod cmd;
mod context;
mod output;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = args::parse(std::env::args_os());
    if matches!(cli.command, Some(args::Command::Worker)) {
        init_worker_tracing();
        service::run_worker();
    }
    if !matches!(cli.command, Some(args::Command::Serve(_))) {
        end_quietly_when_the_reader_goes();
    }
    // `serve` installs its own subscriber (it also keeps logs for the API).
    if !matches!(cli.command, Some(args::Command::Serve(_))) {
        init_tracing(
            cli.global.verbose,
            cli.global.log_format.as_deref() == Some("json"),
        );
    }
    match cmd::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `llama-dashboard models info X | head -c1`: when the reader of stdout (or stderr) goes
/// away, end the way C tools do: killed by SIGPIPE, silently, status 141 in the shell.
///
/// Rust ignores SIGPIPE, so every `println!` after the reader left would panic with a
/// backtrace. Putting the default disposition back is the one switch that covers every
/// write (our prints, tables, progress bars, libraries) rather than an error check at each
/// print; it is what nightly Rust's `-Zon-broken-pipe=kill` does. `serve` keeps SIGPIPE
/// ignored: a server must not die because the pipe its logs go to closed (its sockets are
/// written with `MSG_NOSIGNAL` either way).
fn end_quietly_when_the_reader_goes() {
    #[cfg(unix)]
    // SAFETY: called at the start of `main`, before any other thread exists; `SIG_DFL` is
    // a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// A model worker's log: plain lines on stderr, which the server copies into its own log
/// (prefixed with the model) and keeps the last of for a crash reason. Warnings and errors
/// unless the log filter variable says otherwise.
fn init_worker_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env(config::LOG_ENV)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .without_time()
        .init();
}

/// Logs go to stderr so `--json` output on stdout stays machine-readable; `json` makes each
/// line one JSON object (`--log-format json`).
fn init_tracing(verbose: u8, json: bool) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env(config::LOG_ENV)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if json {
        logs.json().init();
    } else {
        logs.without_time().init();
    }
}
