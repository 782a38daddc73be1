//! Replays minimized fuzzer findings. Drop a `cargo fuzz tmin` output into
//! tests/regressions/ (any extension) and it is read here with every option set;
//! the test fails if anything panics. No findings yet: see fuzz/README.md.

use gguf::{ReadOptions, read, scan};
use std::io::Cursor;
use std::path::Path;

#[test]
fn fuzzer_findings_do_not_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for opts in [ReadOptions::default(), ReadOptions::keep_all()] {
            let result = read(Cursor::new(&bytes), &opts);
            eprintln!("{}: {:?}", path.display(), result.as_ref().map(|_| ()));
        }
        let _ = scan(Cursor::new(&bytes));
    }
}
