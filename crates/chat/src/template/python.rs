//! Python's text forms of values, as HF chat templates produce them.
//!
//! Templates were written against Python Jinja2, where `tojson` is
//! `json.dumps(x, ensure_ascii=False)` (transformers overrides the filter so it
//! neither sorts keys nor HTML-escapes) and `{{ value }}` prints `True`, `None`
//! or `{'a': 1}`. Models were trained on prompts rendered that way, so the
//! exact spacing matters: `{"a": 1}`, not `{"a":1}`.

use std::fmt::Write;

use minijinja::value::{Value, ValueKind};
use minijinja::{Error, ErrorKind};

/// Deeper nesting is refused instead of risking the stack (a namespace can
/// be made to contain itself).
const MAX_DEPTH: usize = 256;

/// `json.dumps` options.
#[derive(Debug, Clone)]
pub struct DumpOptions {
    /// `None`: one line. `Some(prefix)`: one item per line, `prefix` per level.
    pub indent: Option<String>,
    pub item_separator: String,
    pub key_separator: String,
    pub sort_keys: bool,
    pub ensure_ascii: bool,
}

impl DumpOptions {
    /// `json.dumps(x, ensure_ascii=False, indent=indent)` defaults: `", "` between
    /// items on one line, `","` when indenting (Python drops the trailing space
    /// then), and `": "` after keys.
    pub fn python(indent: Option<String>) -> Self {
        DumpOptions {
            item_separator: if indent.is_some() { "," } else { ", " }.into(),
            key_separator: ": ".into(),
            indent,
            sort_keys: false,
            ensure_ascii: false,
        }
    }
}

/// `json.dumps(value)` with the given options.
pub fn dumps(value: &Value, options: &DumpOptions) -> Result<String, Error> {
    let mut out = String::new();
    dump_value(&mut out, value, options, 0)?;
    Ok(out)
}

fn dump_value(
    out: &mut String,
    value: &Value,
    options: &DumpOptions,
    depth: usize,
) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "value is nested too deeply for tojson",
        ));
    }
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => write_number(out, value),
        ValueKind::String => write_json_string(
            out,
            value.as_str().unwrap_or_default(),
            options.ensure_ascii,
        ),
        ValueKind::Seq | ValueKind::Iterable | ValueKind::Bytes => {
            let items: Vec<Value> = value.try_iter()?.collect();
            write_container(out, '[', ']', items.len(), options, depth, |out, index| {
                dump_value(out, &items[index], options, depth + 1)
            })?;
        }
        ValueKind::Map => {
            let mut entries: Vec<(String, Value)> = Vec::new();
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                entries.push((json_key(&key), item));
            }
            if options.sort_keys {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            }
            write_container(
                out,
                '{',
                '}',
                entries.len(),
                options,
                depth,
                |out, index| {
                    let (key, item) = &entries[index];
                    write_json_string(out, key, options.ensure_ascii);
                    out.push_str(&options.key_separator);
                    dump_value(out, item, options, depth + 1)
                },
            )?;
        }
        // Functions, macros and other opaque objects: Python would refuse;
        // their text is the most useful thing to show.
        _ => write_json_string(out, &value.to_string(), options.ensure_ascii),
    }
    Ok(())
}

fn write_container(
    out: &mut String,
    open: char,
    close: char,
    len: usize,
    options: &DumpOptions,
    depth: usize,
    mut write_item: impl FnMut(&mut String, usize) -> Result<(), Error>,
) -> Result<(), Error> {
    out.push(open);
    if len == 0 {
        out.push(close);
        return Ok(());
    }
    for index in 0..len {
        if index > 0 {
            out.push_str(&options.item_separator);
        }
        if let Some(indent) = &options.indent {
            out.push('\n');
            out.push_str(&indent.repeat(depth + 1));
        }
        write_item(out, index)?;
    }
    if let Some(indent) = &options.indent {
        out.push('\n');
        out.push_str(&indent.repeat(depth));
    }
    out.push(close);
    Ok(())
}

/// JSON object keys: Python converts `True`, `None` and numbers to strings.
fn json_key(key: &Value) -> String {
    match key.kind() {
        ValueKind::String => key.as_str().unwrap_or_default().to_owned(),
        ValueKind::None | ValueKind::Undefined => "null".into(),
        ValueKind::Bool => if key.is_true() { "true" } else { "false" }.into(),
        ValueKind::Number => {
            let mut out = String::new();
            write_number(&mut out, key);
            out
        }
        _ => key.to_string(),
    }
}

fn write_number(out: &mut String, value: &Value) {
    if value.is_integer() {
        let _ = write!(out, "{value}");
    } else {
        match f64::try_from(value.clone()) {
            Ok(float) => out.push_str(&float_repr(float)),
            Err(_) => {
                let _ = write!(out, "{value}");
            }
        }
    }
}

/// Python's `repr(float)`: shortest round-trip digits, `1.0` not `1`, and
/// scientific notation (`1e+16`, `1e-05`) outside `1e-4 <= |x| < 1e16`.
pub fn float_repr(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.2345e-7".
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if !(-4..16).contains(&exponent) {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        return format!(
            "{sign}{first}{fraction}e{exponent_sign}{:02}",
            exponent.abs()
        );
    }
    // Positional notation with the decimal point `exponent + 1` digits in.
    let point = exponent + 1;
    let (integer, fraction) = if point <= 0 {
        (
            "0".to_string(),
            format!("{}{digits}", "0".repeat((-point) as usize)),
        )
    } else if point as usize >= digits.len() {
        (
            format!("{digits}{}", "0".repeat(point as usize - digits.len())),
            String::new(),
        )
    } else {
        let (integer, fraction) = digits.split_at(point as usize);
        (integer.to_string(), fraction.to_string())
    };
    let fraction = if fraction.is_empty() {
        "0".to_string()
    } else {
        fraction
    };
    format!("{sign}{integer}.{fraction}")
}

fn write_json_string(out: &mut String, text: &str, ensure_ascii: bool) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if ensure_ascii && !c.is_ascii() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `str(value)` as `{{ value }}` prints it: `True`, `None`,
/// `['a', 1]`, `{'k': 'v'}`. `None` for values printed the Jinja way
/// (strings, integers, undefined).
pub fn display_override(value: &Value) -> Option<String> {
    match value.kind() {
        ValueKind::None | ValueKind::Bool | ValueKind::Seq | ValueKind::Map => {
            let mut out = String::new();
            write_repr(&mut out, value, 0);
            Some(out)
        }
        ValueKind::Number if !value.is_integer() => f64::try_from(value.clone())
            .ok()
            .map(float_repr_for_display),
        _ => None,
    }
}

/// `str(float)` prints `inf`/`nan` where `json.dumps` writes `Infinity`/`NaN`.
fn float_repr_for_display(value: f64) -> String {
    if value.is_nan() {
        "nan".into()
    } else if value.is_infinite() {
        if value > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        float_repr(value)
    }
}

fn write_repr(out: &mut String, value: &Value, depth: usize) {
    if depth > MAX_DEPTH {
        out.push_str("...");
        return;
    }
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("None"),
        ValueKind::Bool => out.push_str(if value.is_true() { "True" } else { "False" }),
        ValueKind::Number => match display_override(value) {
            Some(text) => out.push_str(&text),
            None => {
                let _ = write!(out, "{value}");
            }
        },
        ValueKind::String => write_string_repr(out, value.as_str().unwrap_or_default()),
        ValueKind::Seq => {
            out.push('[');
            if let Ok(items) = value.try_iter() {
                for (index, item) in items.enumerate() {
                    if index > 0 {
                        out.push_str(", ");
                    }
                    write_repr(out, &item, depth + 1);
                }
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            if let Ok(keys) = value.try_iter() {
                for (index, key) in keys.enumerate() {
                    if index > 0 {
                        out.push_str(", ");
                    }
                    write_repr(out, &key, depth + 1);
                    out.push_str(": ");
                    let item = value.get_item(&key).unwrap_or_default();
                    write_repr(out, &item, depth + 1);
                }
            }
            out.push('}');
        }
        _ => {
            let _ = write!(out, "{value}");
        }
    }
}

/// Python's `repr(str)`: single quotes unless the text has a single quote and
/// no double quote.
fn write_string_repr(out: &mut String, text: &str) {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(json: &str) -> Value {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn dumps_like_python_json() {
        let v = value(r#"{"b": [1, 2.5, true, null], "a": "x\"<y>\n", "é": {}}"#);
        assert_eq!(
            dumps(&v, &DumpOptions::python(None)).unwrap(),
            r#"{"b": [1, 2.5, true, null], "a": "x\"<y>\n", "é": {}}"#
        );
        assert_eq!(
            dumps(&v, &DumpOptions::python(Some("  ".into()))).unwrap(),
            "{\n  \"b\": [\n    1,\n    2.5,\n    true,\n    null\n  ],\n  \"a\": \"x\\\"<y>\\n\",\n  \"é\": {}\n}"
        );
        let sorted = DumpOptions {
            sort_keys: true,
            ensure_ascii: true,
            ..DumpOptions::python(None)
        };
        assert_eq!(
            dumps(&v, &sorted).unwrap(),
            r#"{"a": "x\"<y>\n", "b": [1, 2.5, true, null], "\u00e9": {}}"#
        );
    }

    #[test]
    fn floats_print_like_python() {
        for (float, text) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345.6, "123456789012345.6"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.25e-7, "1.25e-07"),
            (100.0, "100.0"),
            (0.0, "0.0"),
        ] {
            assert_eq!(float_repr(float), text, "{float}");
        }
    }

    #[test]
    fn display_is_python_str() {
        assert_eq!(
            display_override(&Value::from(true)).as_deref(),
            Some("True")
        );
        assert_eq!(display_override(&Value::from(())).as_deref(), Some("None"));
        assert_eq!(display_override(&Value::from(2.0)).as_deref(), Some("2.0"));
        assert_eq!(display_override(&Value::from(2)), None);
        assert_eq!(display_override(&Value::from("s")), None);
        assert_eq!(
            display_override(&value(r#"{"a": ["it's", "x"], "b": false}"#)).as_deref(),
            Some(r#"{'a': ["it's", 'x'], 'b': False}"#)
        );
    }
}
