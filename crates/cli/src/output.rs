//! Output helpers shared by the commands: tables for people, JSON for scripts.

use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;

/// A borderless table in the style of `ollama list`.
pub fn table<I, S>(header: I) -> Table
where
    I: IntoIterator<Item = S>,
    S: Into<comfy_table::Cell>,
{
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    t
}

/// Prints a value as pretty JSON on stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Bytes as people read them: 1 decimal, binary units (what `ls -lh` and Ollama show).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Large counts in short form: 268.1M, 32.8K.
pub fn count(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}K", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.2}B", n as f64 / 1e9),
    }
}

/// An optional value, or a dash.
pub fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_sizes_and_counts() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(98_362_432), "93.8 MiB");
        assert_eq!(bytes(253_113_024), "241.4 MiB");
        assert_eq!(count(268_098_176), "268.1M");
        assert_eq!(count(32_768), "32.8K");
        assert_eq!(count(7_000_000_000), "7.00B");
        assert_eq!(or_dash(None::<u32>), "-");
    }
}
