//! Builds the dashboard (`web/`) into `$OUT_DIR/dist` for rust-embed.
//!
//! Rules:
//! - Cargo reruns this only when a web source changed (the `rerun-if-changed` list below), so a
//!   second `cargo build` with nothing changed does nothing.
//! - `npm ci` runs only when `web/node_modules` is missing or `package-lock.json` changed since
//!   the last install (a copy of the lockfile is kept in `node_modules` as the stamp).
//! - The output goes to this build's `OUT_DIR`, never into the source tree, so builds into
//!   several target dirs do not overwrite each other; a lock file in `web/` makes builds that
//!   share one `web/` (two cargo runs in one worktree) install and build one after the other.
//! - No Node.js or npm: the build stops and names `scripts/setup.sh`, which installs them.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

const WATCHED: &[&str] = &[
    "src",
    "public",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
];

const STAMP: &str = "node_modules/.llama-dashboard-lock";

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let web = manifest.join("../../web");
    let web = web.canonicalize().unwrap_or(web);
    for p in WATCHED {
        println!("cargo:rerun-if-changed={}", web.join(p).display());
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("dist");

    let npm = npm();
    check_node(&npm);
    let lock = File::create(web.join(".build.lock"))
        .unwrap_or_else(|e| fail(&format!("cannot create {}/.build.lock: {e}", web.display())));
    lock.lock()
        .unwrap_or_else(|e| fail(&format!("cannot lock {}/.build.lock: {e}", web.display())));

    if needs_install(&web) {
        run(&npm, &["ci", "--no-audit", "--no-fund"], &web);
        fs::copy(web.join("package-lock.json"), web.join(STAMP))
            .unwrap_or_else(|e| fail(&format!("cannot write {STAMP}: {e}")));
    }
    let out_arg = out.display().to_string();
    run(
        &npm,
        &["run", "build", "--", "--outDir", &out_arg, "--emptyOutDir"],
        &web,
    );
    if !out.join("index.html").is_file() {
        fail(&format!("the web build left no index.html in {out_arg}"));
    }
}

fn npm() -> String {
    std::env::var("NPM").unwrap_or_else(|_| "npm".into())
}

fn check_node(npm: &str) {
    let ok = |cmd: &str| {
        Command::new(cmd)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !ok("node") || !ok(npm) {
        fail(
            "Node.js and npm are needed to build the web dashboard (web/). Run scripts/setup.sh \
             (it installs the Debian packages nodejs and npm), then build again.",
        );
    }
}

fn needs_install(web: &Path) -> bool {
    if !web.join("node_modules").is_dir() {
        return true;
    }
    match (
        fs::read(web.join("package-lock.json")),
        fs::read(web.join(STAMP)),
    ) {
        (Ok(lock), Ok(stamp)) => lock != stamp,
        _ => true,
    }
}

fn run(npm: &str, args: &[&str], dir: &Path) {
    eprintln!("web: {npm} {}", args.join(" "));
    let status = Command::new(npm)
        .args(args)
        .current_dir(dir)
        .env("NO_UPDATE_NOTIFIER", "1")
        .status()
        .unwrap_or_else(|e| fail(&format!("cannot run {npm}: {e} (scripts/setup.sh installs it)")));
    if !status.success() {
        fail(&format!(
            "`{npm} {}` in {} failed ({status}); its output is above",
            args.join(" "),
            dir.display()
        ));
    }
}

fn fail(msg: &str) -> ! {
    // cargo shows a build script's stderr when it fails.
    eprintln!("error: {msg}");
    std::process::exit(1);
}
