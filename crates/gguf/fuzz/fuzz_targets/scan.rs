//! Fast scan of arbitrary bytes: never panics; when the full read succeeds the scan
//! must agree with it.
#![no_main]

use gguf::{ReadOptions, read, scan};
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let scanned = scan(Cursor::new(data));
    if let Ok(file) = read(Cursor::new(data), &ReadOptions::default()) {
        let s = scanned.expect("scan must succeed where a full read does");
        assert_eq!(s.architecture.as_deref(), file.architecture());
        assert_eq!(s.name.as_deref(), file.name());
        assert_eq!(s.file_type, file.file_type());
        assert_eq!(s.context_length, file.context_length());
        assert_eq!(s.version, file.version);
    }
});
