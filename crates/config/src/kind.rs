//! The type of a setting and its rules: how its string form (environment, flags, `config set`)
//! becomes the TOML value stored in the file, and how a value read from the file is checked.
//! Both go through the same [`Kind::parse`], so every source accepts and rejects the same things
//! with the same words.

use toml::Value;

use crate::schema::{ApiKey, GpuLayers};

/// What values a setting takes. The range lives here, so validation and the documentation
/// cannot disagree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// An integer in `min..=max`.
    Int {
        min: i64,
        max: i64,
    },
    /// An integer in `min..=max`, or `auto` (or empty) to leave it unset.
    AutoInt {
        min: i64,
        max: i64,
    },
    Float(FloatRange),
    Bool,
    /// A non-empty string without whitespace (a host name or address).
    Word,
    /// A secret: taken verbatim, unset when empty, no whitespace or control characters.
    Secret,
    /// A list of non-empty strings.
    List,
    /// API key tables (`[[server.keys]]`); as text, a TOML (or JSON) array of tables. Secret:
    /// each table's `key` is masked.
    Keys,
    /// A list of directories.
    Paths,
    /// A path, unset when empty.
    Path,
    /// Any text (a template), taken verbatim; unset when empty.
    Text,
    /// `auto` or a layer count.
    GpuLayers,
    /// One of a few words (case-insensitive).
    Choice(&'static [&'static str]),
    /// Environment only: `tracing` filter directives (`info,tower_http=warn`).
    Filter,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FloatRange {
    AtLeast(f64),
    Above(f64),
    Between(f64, f64),
}

impl Kind {
    /// The value to store for the string form `v`; `None` unsets an optional setting.
    pub(crate) fn parse(&self, v: &str) -> Result<Option<Value>, String> {
        let (raw, v) = (v, v.trim());
        Ok(Some(match *self {
            // Secrets are taken verbatim: stray whitespace is refused, not silently trimmed.
            Kind::Secret => return secret(raw),
            Kind::Int { min, max } => Value::Integer(int(v, min, max)?),
            Kind::AutoInt { min, max } => {
                if v.is_empty() || v.eq_ignore_ascii_case("auto") {
                    return Ok(None);
                }
                Value::Integer(int(v, min, max)?)
            }
            Kind::Float(range) => Value::Float(float(v, range)?),
            Kind::Bool => Value::Boolean(boolean(v)?),
            Kind::Word => {
                if v.is_empty() {
                    return Err("must not be empty".to_owned());
                }
                if v.chars().any(char::is_whitespace) {
                    return Err(format!("`{v}` must not contain whitespace"));
                }
                Value::String(v.to_owned())
            }
            Kind::List => {
                let items = list(v)?;
                if items.iter().any(|i| i.trim().is_empty()) {
                    return Err("list items must not be empty".to_owned());
                }
                strings(items)
            }
            Kind::Paths => {
                let items = list(v)?;
                if items.iter().any(String::is_empty) {
                    return Err("a directory is empty".to_owned());
                }
                strings(items)
            }
            Kind::Path => {
                if v.is_empty() {
                    return Ok(None);
                }
                Value::String(v.to_owned())
            }
            Kind::Text => {
                if v.is_empty() {
                    return Ok(None);
                }
                Value::String(raw.to_owned())
            }
            Kind::Keys => api_keys(v)?,
            Kind::GpuLayers => match v.parse::<GpuLayers>()? {
                GpuLayers::Auto => Value::String("auto".to_owned()),
                GpuLayers::Count(n) => Value::Integer(n.into()),
            },
            Kind::Choice(words) => match words.iter().find(|w| w.eq_ignore_ascii_case(v)) {
                Some(w) => Value::String((*w).to_owned()),
                None => return Err(format!("`{v}` is not one of {}", words.join(", "))),
            },
            Kind::Filter => Value::String(v.to_owned()),
        }))
    }

    /// Check a value read from `config.toml`: its TOML type, then the same rules as
    /// [`Kind::parse`].
    pub(crate) fn check(&self, value: &Value) -> Result<(), String> {
        let text = match (self, value) {
            (Kind::Int { .. } | Kind::AutoInt { .. }, Value::Float(f)) => {
                return Err(format!("`{f}` is not an integer"));
            }
            (Kind::Int { .. } | Kind::AutoInt { .. } | Kind::GpuLayers, Value::Integer(i)) => {
                i.to_string()
            }
            (Kind::Float(_), Value::Float(f)) => f.to_string(),
            (Kind::Float(_), Value::Integer(i)) => i.to_string(),
            (Kind::Bool, Value::Boolean(b)) => b.to_string(),
            (Kind::List | Kind::Paths | Kind::Keys, Value::Array(_)) => value.to_string(),
            (
                Kind::Word
                | Kind::Secret
                | Kind::Path
                | Kind::Text
                | Kind::GpuLayers
                | Kind::Choice(_)
                | Kind::Filter,
                Value::String(s),
            ) => s.clone(),
            _ => return Err(self.type_mismatch(value)),
        };
        self.parse(&text).map(drop)
    }

    /// The string form of a stored value, as [`Kind::parse`] accepts it; `None` is an unset
    /// optional setting.
    pub(crate) fn text(&self, value: Option<&Value>) -> String {
        match value {
            None if matches!(self, Kind::AutoInt { .. }) => "auto".to_owned(),
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        }
    }

    /// "expected an integer, found a string".
    fn type_mismatch(&self, found: &Value) -> String {
        let expected = match self {
            Kind::Int { .. } | Kind::AutoInt { .. } => "an integer",
            Kind::Float(_) => "a number",
            Kind::Bool => "true or false",
            Kind::List | Kind::Paths => "a list of strings, like [\"a\", \"b\"]",
            Kind::Keys => "a list of key tables, like [{ key = \"...\", admin = false }]",
            Kind::GpuLayers => "\"auto\" or an integer",
            _ => "a string",
        };
        let found = found.type_str();
        let article = if matches!(found, "integer" | "array") {
            "an"
        } else {
            "a"
        };
        format!("expected {expected}, found {article} {found}")
    }

    /// The type, in words, for the documentation.
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Int { .. } => "integer",
            Kind::AutoInt { .. } => "integer or `auto`",
            Kind::Float(_) => "number",
            Kind::Bool => "boolean",
            Kind::Word => "string",
            Kind::Secret => "secret string",
            Kind::List => "list of strings",
            Kind::Keys => "list of key tables",
            Kind::Paths => "list of paths",
            Kind::Path => "path",
            Kind::Text => "text",
            Kind::GpuLayers => "integer or `auto`",
            Kind::Choice(_) => "string",
            Kind::Filter => "filter directives",
        }
    }

    /// The accepted range, in words, for the documentation; empty when the type says it all.
    pub fn range(&self) -> String {
        let ints = |min: i64, max: i64| match (min, max) {
            (i64::MIN, i64::MAX) => "any".to_owned(),
            // Bounds that only guard against overflow are not worth printing.
            (min, max) if max >= i64::from(u32::MAX) => format!(">= {min}"),
            (min, max) => format!("{min}..={max}"),
        };
        match *self {
            Kind::Int { min, max } | Kind::AutoInt { min, max } => ints(min, max),
            Kind::Float(FloatRange::AtLeast(m)) => format!(">= {m}"),
            Kind::Float(FloatRange::Above(m)) => format!("> {m}"),
            Kind::Float(FloatRange::Between(a, b)) => format!("{a}..={b}"),
            Kind::GpuLayers => ">= 0".to_owned(),
            Kind::Choice(words) => words.join(", "),
            Kind::Word | Kind::Secret => "no whitespace".to_owned(),
            _ => String::new(),
        }
    }
}

fn int(v: &str, min: i64, max: i64) -> Result<i64, String> {
    // Parsed wider than i64 so that a huge number reports the range, not a parse failure.
    let n: i128 = v.parse().map_err(|_| format!("`{v}` is not an integer"))?;
    if (i128::from(min)..=i128::from(max)).contains(&n) {
        Ok(n as i64)
    } else {
        Err(format!("{n} is out of range {min}..={max}"))
    }
}

fn float(v: &str, range: FloatRange) -> Result<f64, String> {
    let f: f64 = v.parse().map_err(|_| format!("`{v}` is not a number"))?;
    if !f.is_finite() {
        return Err(format!("{f} is not a finite number"));
    }
    match range {
        FloatRange::AtLeast(m) if f < m => Err(format!("{f} must be >= {m}")),
        FloatRange::Above(m) if f <= m => Err(format!("{f} must be > {m}")),
        FloatRange::Between(a, b) if !(a..=b).contains(&f) => {
            Err(format!("{f} is out of range {a}..={b}"))
        }
        _ => Ok(f),
    }
}

fn boolean(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!("`{v}` is not a boolean (true or false)")),
    }
}

fn secret(v: &str) -> Result<Option<Value>, String> {
    if v.is_empty() {
        return Ok(None);
    }
    // The value is a secret: describe the problem without echoing it.
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace or control characters".to_owned());
    }
    Ok(Some(Value::String(v.to_owned())))
}

/// `[[server.keys]]` from text: the schema's own [`ApiKey`] (serde, `deny_unknown_fields`) is
/// the one mapping; this adds the rules serde cannot say. Messages never echo a key.
fn api_keys(v: &str) -> Result<Value, String> {
    let keys = parse_api_keys(v)?;
    for (i, k) in keys.iter().enumerate() {
        let which = k.name.clone().unwrap_or_else(|| format!("#{}", i + 1));
        secret(&k.key)
            .map_err(|r| format!("key {which}: {r}"))?
            .ok_or_else(|| format!("key {which}: `key` must not be empty"))?;
        if k.rate_limit_per_minute == Some(0) {
            return Err(format!(
                "key {which}: rate_limit_per_minute must be >= 1 (leave it out for the server's limit)"
            ));
        }
        if keys[..i].iter().any(|o| o.key == k.key) {
            return Err(format!("key {which}: the same key is listed twice"));
        }
    }
    Value::try_from(&keys).map_err(|e| e.to_string())
}

/// The tables of a `server.keys` text (TOML or JSON), not yet checked.
pub(crate) fn parse_api_keys(v: &str) -> Result<Vec<ApiKey>, String> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(Vec::new());
    }
    #[derive(serde::Deserialize)]
    struct Doc {
        v: Vec<ApiKey>,
    }
    match toml::from_str::<Doc>(&format!("v = {v}")) {
        Ok(d) => Ok(d.v),
        // The settings API sends JSON; same struct, same rules.
        Err(toml_err) => serde_json::from_str(v).map_err(|_| {
            format!(
                "not a list of key tables ({}); each takes key, name, admin, \
                 rate_limit_per_minute, enabled",
                toml_err.message().trim()
            )
        }),
    }
}

fn strings(items: Vec<String>) -> Value {
    Value::Array(items.into_iter().map(Value::String).collect())
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
