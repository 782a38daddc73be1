//! One file fetched exactly as a download task fetches it (redirects followed by hand,
//! `Range`, sha256 checked, atomic move), for `scripts/bench/download-vs-curl.sh`.
//!
//!   fetch_url URL DEST SHA256 SIZE [PARTS]
//!
//! The partial file goes next to DEST (`DEST.part`). Prints the seconds taken.

use download::Origin;
use download::http::{ClientOptions, client};
use download::transfer::{FileSpec, Outcome, Progress, TransferOptions, fetch};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, dest, sha256, size, rest @ ..] = args.as_slice() else {
        eprintln!("usage: fetch_url URL DEST SHA256 SIZE [PARTS]");
        return ExitCode::from(2);
    };
    let parts = rest.first().map_or(1, |p| p.parse().expect("PARTS"));
    let dest = PathBuf::from(dest);
    let mut partial = dest.clone().into_os_string();
    partial.push(".part");
    let spec = FileSpec {
        url: url.clone(),
        mirror_url: None,
        dest,
        partial: partial.into(),
        sha256: Some(sha256.clone()),
        size: Some(size.parse().expect("SIZE")),
        origin: Origin::Url,
        bearer: None,
    };
    let mut options = TransferOptions {
        parts,
        ..TransferOptions::default()
    };
    // For ablations: how often the partial file is flushed to disk.
    if let Ok(mib) = std::env::var("FETCH_SYNC_MIB") {
        options.sync_every = mib.parse::<u64>().expect("FETCH_SYNC_MIB") << 20;
    }
    let http = client(&ClientOptions::default()).expect("client");
    let progress = Progress::default();
    let started = Instant::now();
    match fetch(&http, &spec, &options, &progress, &CancellationToken::new()).await {
        Ok(Outcome::Completed { .. }) => {
            println!("{:.6}", started.elapsed().as_secs_f64());
            for line in progress.log() {
                eprintln!("{line}");
            }
            ExitCode::SUCCESS
        }
        Ok(Outcome::Paused) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
