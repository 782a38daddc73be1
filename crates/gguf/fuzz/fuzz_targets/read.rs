//! Full read of arbitrary bytes: must return Ok or Err, never panic, hang or
//! allocate beyond what the input could justify. Also checks that whatever parses
//! can be printed and that derived getters are total.
#![no_main]

use gguf::{ReadOptions, read};
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    // Small preview limits so nested-array preview/skip paths are exercised too.
    let small = ReadOptions {
        array_keep_whole: 4,
        array_preview: 2,
    };
    for opts in [ReadOptions::default(), small, ReadOptions::keep_all()] {
        if let Ok(file) = read(Cursor::new(data), &opts) {
            for (_, v) in &file.kv {
                let _ = v.to_string();
            }
            let _ = file.parameter_count();
            let _ = file.tensor_data_size();
            let _ = file.expected_file_size();
            let _ = file.quantization();
            let _ = file.sampling();
            let _ = file.chat_templates();
            assert!(file.data_offset % file.alignment == 0);
        }
    }
});
