//! Reads many GGUF headers at once.
//!
//! A cold scan is bound by disk latency, not CPU: a few reads per file, each waiting on the
//! device. Running more readers than cores keeps the device queue full, so the pool is
//! sized for I/O rather than for the 2 cores this often runs on.

use gguf::ScanInfo;
use rayon::prelude::*;
use std::path::PathBuf;

const IO_THREADS: usize = 16;

/// Scans the headers of `paths` in parallel; results come back in input order.
pub(crate) fn scan_all(paths: &[PathBuf]) -> Vec<Result<ScanInfo, String>> {
    let scan = || {
        paths
            .par_iter()
            .map(|p| gguf::scan_path(p).map_err(|e| e.to_string()))
            .collect()
    };
    if paths.len() < 4 {
        return paths
            .iter()
            .map(|p| gguf::scan_path(p).map_err(|e| e.to_string()))
            .collect();
    }
    match rayon::ThreadPoolBuilder::new()
        .num_threads(IO_THREADS)
        .build()
    {
        Ok(pool) => pool.install(scan),
        Err(_) => scan(),
    }
}
