//! Dotted keys (`server.port`): the one place that turns a string into a typed, range-checked
//! value. The environment, command-line overrides and `config set` all go through
//! [`Config::set`]; values read from `config.toml` are typed by serde and then range-checked by
//! the same [`Config::check`] rules, so every source accepts and rejects the same things.

use std::ops::RangeInclusive;
use std::path::PathBuf;

use crate::error::ConfigError;
use crate::schema::{Config, GpuLayers, LogLevel};

/// Every key, in file order. Keep in sync with the structs in [`crate::schema`] (a test checks).
pub(crate) const KEYS: &[&str] = &[
    "server.host",
    "server.port",
    "server.api_key",
    "server.admin_api_key",
    "server.cors_origins",
    "server.timeout_seconds",
    "server.body_limit_mb",
    "models.dirs",
    "models.models_max",
    "models.sleep_idle_seconds",
    "models.parallel",
    "models.ctx_size",
    "models.n_gpu_layers",
    "models.threads",
    "sources.ollama",
    "sources.huggingface",
    "sources.lmstudio",
    "sources.ollama_dir",
    "sources.huggingface_dir",
    "sources.lmstudio_dir",
    "sampling.temperature",
    "sampling.top_k",
    "sampling.top_p",
    "sampling.min_p",
    "sampling.repeat_penalty",
    "log.level",
];

// Ranges are inclusive and shared by parsing and validation so the messages agree.
const PORT: RangeInclusive<i128> = 1..=65535;
/// Upper bound only guards against overflow when turned into a `Duration`/deadline.
const TIMEOUT_SECONDS: RangeInclusive<i128> = 1..=(u32::MAX as i128);
/// 64 GiB: beyond that it is surely a typo.
const BODY_LIMIT_MB: RangeInclusive<i128> = 1..=65536;
/// Sanity bound; each loaded model is a separate llama.cpp context.
const MODELS_MAX: RangeInclusive<i128> = 1..=1024;
const SLEEP_IDLE_SECONDS: RangeInclusive<i128> = (i64::MIN as i128)..=(i64::MAX as i128);
/// llama.cpp's own limit on parallel sequences is 256 (`LLAMA_MAX_SEQ`).
const PARALLEL: RangeInclusive<i128> = 1..=256;
const CTX_SIZE: RangeInclusive<i128> = 0..=(u32::MAX as i128);
const THREADS: RangeInclusive<i128> = 1..=4096;
/// llama.cpp takes `top_k` as an `int32_t`.
const TOP_K: RangeInclusive<i128> = 0..=(i32::MAX as i128);

/// Why a key could not be set; turned into a [`ConfigError`] by the caller, which knows the key
/// and origin.
pub(crate) enum KeyError {
    Unknown,
    Invalid(String),
}

impl From<String> for KeyError {
    fn from(reason: String) -> Self {
        KeyError::Invalid(reason)
    }
}

impl Config {
    /// All dotted keys, in the order they appear in a full `config.toml`.
    pub fn keys() -> &'static [&'static str] {
        KEYS
    }

    /// Set one key from its string form, validating type and range; on error `self` is
    /// unchanged.
    ///
    /// Accepted forms: integers and floats in decimal; booleans `true/false`, `yes/no`, `on/off`,
    /// `1/0`; `n_gpu_layers` `auto` or a count; optional values (`server.api_key`,
    /// `server.admin_api_key`, `sources.*_dir`) are cleared by an empty string, and
    /// `models.threads` by an empty string or `auto`; list keys (`models.dirs`,
    /// `server.cors_origins`) take a comma-separated list or a TOML array literal
    /// (`["a", "b,c"]`), and an empty string or `[]` for none.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let mut next = self.clone();
        match next.assign(key, value) {
            Ok(()) => {}
            Err(KeyError::Unknown) => return Err(unknown_key(key)),
            Err(KeyError::Invalid(reason)) => return Err(invalid(key, reason)),
        }
        next.check(key).map_err(|reason| invalid(key, reason))?;
        *self = next;
        Ok(())
    }

    /// The value of one key in the form [`Config::set`] accepts (so `set(k, get(k))` is a no-op);
    /// `None` for an unknown key. Unset optional values are `""` (`"auto"` for `models.threads`).
    /// Note that this returns API keys in clear text.
    pub fn get(&self, key: &str) -> Option<String> {
        let s = &self.server;
        let m = &self.models;
        let src = &self.sources;
        let sm = &self.sampling;
        Some(match key {
            "server.host" => s.host.clone(),
            "server.port" => s.port.to_string(),
            "server.api_key" => s.api_key.clone().unwrap_or_default(),
            "server.admin_api_key" => s.admin_api_key.clone().unwrap_or_default(),
            "server.cors_origins" => format_list(s.cors_origins.iter().cloned()),
            "server.timeout_seconds" => s.timeout_seconds.to_string(),
            "server.body_limit_mb" => s.body_limit_mb.to_string(),
            "models.dirs" => format_list(m.dirs.iter().map(|p| p.to_string_lossy().into_owned())),
            "models.models_max" => m.models_max.to_string(),
            "models.sleep_idle_seconds" => m.sleep_idle_seconds.to_string(),
            "models.parallel" => m.parallel.to_string(),
            "models.ctx_size" => m.ctx_size.to_string(),
            "models.n_gpu_layers" => m.n_gpu_layers.to_string(),
            "models.threads" => m
                .threads
                .map_or_else(|| "auto".to_owned(), |t| t.to_string()),
            "sources.ollama" => src.ollama.to_string(),
            "sources.huggingface" => src.huggingface.to_string(),
            "sources.lmstudio" => src.lmstudio.to_string(),
            "sources.ollama_dir" => format_opt_path(&src.ollama_dir),
            "sources.huggingface_dir" => format_opt_path(&src.huggingface_dir),
            "sources.lmstudio_dir" => format_opt_path(&src.lmstudio_dir),
            "sampling.temperature" => sm.temperature.to_string(),
            "sampling.top_k" => sm.top_k.to_string(),
            "sampling.top_p" => sm.top_p.to_string(),
            "sampling.min_p" => sm.min_p.to_string(),
            "sampling.repeat_penalty" => sm.repeat_penalty.to_string(),
            "log.level" => self.log.level.to_string(),
            _ => return None,
        })
    }

    /// Check every value's range (types are already guaranteed by Rust). Used on configs built
    /// by serde from a file, which cannot express ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for key in KEYS {
            self.check(key).map_err(|reason| invalid(key, reason))?;
        }
        Ok(())
    }

    /// Parse `value` for `key` and store it. Integer ranges are checked here, before narrowing
    /// to the field's type, so "70000" reports the real range rather than a u16 overflow.
    fn assign(&mut self, key: &str, value: &str) -> Result<(), KeyError> {
        let v = value.trim();
        let s = &mut self.server;
        let m = &mut self.models;
        let src = &mut self.sources;
        let sm = &mut self.sampling;
        match key {
            "server.host" => s.host = v.to_owned(),
            "server.port" => s.port = int(v, PORT)? as u16,
            // Not trimmed: a secret is taken verbatim and `check` rejects stray whitespace.
            "server.api_key" => s.api_key = opt_string(value),
            "server.admin_api_key" => s.admin_api_key = opt_string(value),
            "server.cors_origins" => s.cors_origins = list(v)?,
            "server.timeout_seconds" => s.timeout_seconds = int(v, TIMEOUT_SECONDS)? as u64,
            "server.body_limit_mb" => s.body_limit_mb = int(v, BODY_LIMIT_MB)? as u32,
            "models.dirs" => m.dirs = list(v)?.into_iter().map(PathBuf::from).collect(),
            "models.models_max" => m.models_max = int(v, MODELS_MAX)? as u32,
            "models.sleep_idle_seconds" => {
                m.sleep_idle_seconds = int(v, SLEEP_IDLE_SECONDS)? as i64
            }
            "models.parallel" => m.parallel = int(v, PARALLEL)? as u32,
            "models.ctx_size" => m.ctx_size = int(v, CTX_SIZE)? as u32,
            "models.n_gpu_layers" => m.n_gpu_layers = v.parse::<GpuLayers>()?,
            "models.threads" => {
                m.threads = if v.is_empty() || v.eq_ignore_ascii_case("auto") {
                    None
                } else {
                    Some(int(v, THREADS)? as u32)
                }
            }
            "sources.ollama" => src.ollama = boolean(v)?,
            "sources.huggingface" => src.huggingface = boolean(v)?,
            "sources.lmstudio" => src.lmstudio = boolean(v)?,
            "sources.ollama_dir" => src.ollama_dir = opt_path(v),
            "sources.huggingface_dir" => src.huggingface_dir = opt_path(v),
            "sources.lmstudio_dir" => src.lmstudio_dir = opt_path(v),
            "sampling.temperature" => sm.temperature = float(v)?,
            "sampling.top_k" => sm.top_k = int(v, TOP_K)? as u32,
            "sampling.top_p" => sm.top_p = float(v)?,
            "sampling.min_p" => sm.min_p = float(v)?,
            "sampling.repeat_penalty" => sm.repeat_penalty = float(v)?,
            "log.level" => self.log.level = v.parse::<LogLevel>()?,
            _ => return Err(KeyError::Unknown),
        }
        Ok(())
    }

    /// The range/shape rules for one key's current value.
    fn check(&self, key: &str) -> Result<(), String> {
        let s = &self.server;
        let m = &self.models;
        let sm = &self.sampling;
        match key {
            "server.host" => non_blank_word(&s.host),
            "server.port" => in_range(s.port.into(), PORT),
            "server.api_key" => secret(&s.api_key),
            "server.admin_api_key" => secret(&s.admin_api_key),
            "server.cors_origins" => non_blank_items(&s.cors_origins),
            "server.timeout_seconds" => in_range(s.timeout_seconds.into(), TIMEOUT_SECONDS),
            "server.body_limit_mb" => in_range(s.body_limit_mb.into(), BODY_LIMIT_MB),
            "models.dirs" => {
                if m.dirs.iter().any(|d| d.as_os_str().is_empty()) {
                    Err("a directory is empty".to_owned())
                } else {
                    Ok(())
                }
            }
            "models.models_max" => in_range(m.models_max.into(), MODELS_MAX),
            "models.parallel" => in_range(m.parallel.into(), PARALLEL),
            "models.threads" => m.threads.map_or(Ok(()), |t| in_range(t.into(), THREADS)),
            "sampling.temperature" => at_least_zero(sm.temperature),
            "sampling.top_k" => in_range(sm.top_k.into(), TOP_K),
            "sampling.top_p" => unit_interval(sm.top_p),
            "sampling.min_p" => unit_interval(sm.min_p),
            "sampling.repeat_penalty" => {
                finite(sm.repeat_penalty)?;
                if sm.repeat_penalty > 0.0 {
                    Ok(())
                } else {
                    Err(format!("{} must be > 0", sm.repeat_penalty))
                }
            }
            // Every other key's type already is its whole domain.
            _ => Ok(()),
        }
    }
}

pub(crate) fn unknown_key(key: &str) -> ConfigError {
    ConfigError::UnknownKey {
        origin: None,
        key: key.to_owned(),
        suggestion: suggest(key, KEYS),
    }
}

fn invalid(key: &str, reason: String) -> ConfigError {
    ConfigError::InvalidValue {
        origin: None,
        key: key.to_owned(),
        reason,
    }
}

/// The closest candidate to a mistyped name: the same last segment in another section
/// (`server.ctx_size` → `models.ctx_size`), else a small edit distance.
pub(crate) fn suggest(input: &str, candidates: &[&'static str]) -> Option<&'static str> {
    let input = input.to_ascii_lowercase();
    if let Some((_, tail)) = input.split_once('.')
        && let Some(c) = candidates
            .iter()
            .find(|c| c.split_once('.').map(|(_, t)| t) == Some(tail))
    {
        return Some(c);
    }
    candidates
        .iter()
        .map(|c| (edit_distance(&input, c), *c))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

// ---- string → value ----

fn int(v: &str, range: RangeInclusive<i128>) -> Result<i128, String> {
    let n: i128 = v.parse().map_err(|_| format!("`{v}` is not an integer"))?;
    in_range(n, range)?;
    Ok(n)
}

fn float(v: &str) -> Result<f64, String> {
    let f: f64 = v.parse().map_err(|_| format!("`{v}` is not a number"))?;
    finite(f)?;
    Ok(f)
}

fn boolean(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!("`{v}` is not a boolean (true or false)")),
    }
}

fn opt_string(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_owned())
}

fn opt_path(v: &str) -> Option<PathBuf> {
    (!v.is_empty()).then(|| PathBuf::from(v))
}

/// A TOML array of strings (`["a", "b"]`), or comma-separated items (blank items dropped, so a
/// trailing comma is harmless). Paths containing commas need the TOML form.
fn list(v: &str) -> Result<Vec<String>, String> {
    if v.starts_with('[') {
        #[derive(serde::Deserialize)]
        struct Doc {
            v: Vec<String>,
        }
        return toml::from_str::<Doc>(&format!("v = {v}"))
            .map(|d| d.v)
            .map_err(|e| format!("`{v}` is not a TOML array of strings: {}", e.message()));
    }
    Ok(v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect())
}

// ---- value → string ----

fn format_list(items: impl Iterator<Item = String>) -> String {
    toml::Value::Array(items.map(toml::Value::String).collect()).to_string()
}

fn format_opt_path(p: &Option<PathBuf>) -> String {
    p.as_ref()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

// ---- rules ----

fn in_range(n: i128, range: RangeInclusive<i128>) -> Result<(), String> {
    if range.contains(&n) {
        Ok(())
    } else {
        Err(format!(
            "{n} is out of range {}..={}",
            range.start(),
            range.end()
        ))
    }
}

fn finite(f: f64) -> Result<(), String> {
    if f.is_finite() {
        Ok(())
    } else {
        Err(format!("{f} is not a finite number"))
    }
}

fn at_least_zero(f: f64) -> Result<(), String> {
    finite(f)?;
    if f >= 0.0 {
        Ok(())
    } else {
        Err(format!("{f} must be >= 0"))
    }
}

fn unit_interval(f: f64) -> Result<(), String> {
    finite(f)?;
    if (0.0..=1.0).contains(&f) {
        Ok(())
    } else {
        Err(format!("{f} is out of range 0..=1"))
    }
}

fn non_blank_word(s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        Err("must not be empty".to_owned())
    } else if s.chars().any(char::is_whitespace) {
        Err(format!("`{s}` must not contain whitespace"))
    } else {
        Ok(())
    }
}

fn secret(s: &Option<String>) -> Result<(), String> {
    match s {
        // The value is a secret: describe the problem without echoing it.
        Some(k) if k.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            Err("must not contain whitespace or control characters".to_owned())
        }
        _ => Ok(()),
    }
}

fn non_blank_items(items: &[String]) -> Result<(), String> {
    if items.iter().any(|i| i.trim().is_empty()) {
        Err("list items must not be empty".to_owned())
    } else {
        Ok(())
    }
}
