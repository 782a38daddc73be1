//! Tool-call ids.
//!
//! Ids only need to be unique within a conversation, so a small generator
//! seeded from the standard library's per-process random hash keys, the clock
//! and a counter does; no extra dependency is pulled in for it.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::ToolCallFormat;

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A fresh id: `call_` and 24 letters or digits, as OpenAI's look; for Mistral
/// exactly 9 letters or digits, because Mistral's chat templates refuse any
/// other id when the call is sent back.
pub fn new_call_id(format: ToolCallFormat) -> String {
    match format {
        ToolCallFormat::Mistral => random_alphanumeric(9),
        _ => format!("call_{}", random_alphanumeric(24)),
    }
}

pub fn random_alphanumeric(len: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    hasher.write_u128(nanos);
    let mut state = hasher.finish();
    (0..len)
        .map(|_| {
            // SplitMix64: a well-mixed sequence from one seed.
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ALPHANUMERIC[(z % ALPHANUMERIC.len() as u64) as usize] as char
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_expected_shape_and_differ() {
        let id = new_call_id(ToolCallFormat::Hermes);
        assert!(id.starts_with("call_"));
        assert_eq!(id.len(), 29);
        assert!(id[5..].chars().all(|c| c.is_ascii_alphanumeric()));
        let mistral = new_call_id(ToolCallFormat::Mistral);
        assert_eq!(mistral.len(), 9);
        assert!(mistral.chars().all(|c| c.is_ascii_alphanumeric()));
        let many: std::collections::HashSet<String> =
            (0..1000).map(|_| random_alphanumeric(24)).collect();
        assert_eq!(many.len(), 1000);
    }
}
