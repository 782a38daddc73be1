//! A minijinja environment that behaves like the Python Jinja2 setup HF
//! transformers (and llama.cpp's minja) render chat templates with.

use std::fmt::Write;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Kwargs, Value};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior};

use super::python::{self, DumpOptions};
use super::strftime;

/// The error a template's `raise_exception(message)` produces, found again in
/// the error's source chain to tell it apart from other render failures.
#[derive(Debug)]
pub struct RaisedByTemplate(pub String);

impl std::fmt::Display for RaisedByTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RaisedByTemplate {}

/// The environment every chat template is compiled in.
pub fn python_like_environment() -> Environment<'static> {
    let mut env = Environment::new();
    // transformers: `ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)`.
    let syntax = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .expect("the default delimiters are valid");
    env.set_syntax(syntax);
    // Jinja2's default `Undefined` prints as nothing and is falsy; templates
    // also probe `message.tool_calls.x` on messages without tool calls, which
    // Jinja2 tolerates in tests like `is defined`, so chained lookups must not fail.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    // Prompts are not HTML, whatever a template file is called.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    // `str.strip()`, `str.startswith()`, `dict.items()`, `dict.get()`, ...
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.set_formatter(python_formatter);
    env.add_filter("tojson", tojson);
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", |format: String| {
        strftime::strftime_now(&format)
    });
    env
}

/// `{{ value }}` prints what Python's `str()` would: `True`, `None`, `{'a': 1}`.
fn python_formatter(
    out: &mut minijinja::Output<'_>,
    state: &mut State<'_, '_>,
    value: &Value,
) -> Result<(), Error> {
    match python::display_override(value) {
        Some(text) => out.write_str(&text).map_err(|err| {
            Error::new(ErrorKind::WriteFailure, "cannot write output").with_source(err)
        }),
        None => minijinja::escape_formatter(out, state, value),
    }
}

/// transformers' `tojson`: `json.dumps(x, ensure_ascii=False, indent=indent,
/// separators=separators, sort_keys=sort_keys)`.
fn tojson(value: &Value, indent: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let indent = match indent {
        Some(indent) => Some(indent),
        None => kwargs.get::<Option<Value>>("indent")?,
    };
    let indent = match indent {
        None => None,
        Some(indent) if indent.is_none() => None,
        Some(indent) => match indent.as_str() {
            Some(text) => Some(text.to_owned()),
            None => {
                let spaces = usize::try_from(indent.clone()).map_err(|_| {
                    Error::new(
                        ErrorKind::InvalidOperation,
                        "tojson: indent must be a number or a string",
                    )
                })?;
                Some(" ".repeat(spaces))
            }
        },
    };
    let mut options = DumpOptions::python(indent);
    if let Some(sort_keys) = kwargs.get::<Option<bool>>("sort_keys")? {
        options.sort_keys = sort_keys;
    }
    if let Some(ensure_ascii) = kwargs.get::<Option<bool>>("ensure_ascii")? {
        options.ensure_ascii = ensure_ascii;
    }
    if let Some(separators) = kwargs.get::<Option<Vec<String>>>("separators")? {
        match separators.as_slice() {
            [item, key] => {
                options.item_separator = item.clone();
                options.key_separator = key.clone();
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "tojson: separators must be a pair of strings",
                ));
            }
        }
    }
    kwargs.assert_all_used()?;
    python::dumps(value, &options).map(Value::from)
}

fn raise_exception(message: Option<Value>) -> Result<Value, Error> {
    let message = match message {
        Some(message) => match message.as_str() {
            Some(text) => text.to_owned(),
            None => {
                let mut text = String::new();
                let _ = write!(text, "{message}");
                text
            }
        },
        None => "the template raised an exception".to_owned(),
    };
    Err(Error::new(ErrorKind::InvalidOperation, message.clone())
        .with_source(RaisedByTemplate(message)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(source: &str, ctx: Value) -> String {
        let env = python_like_environment();
        env.render_str(source, ctx).unwrap()
    }

    #[test]
    fn behaves_like_python_jinja() {
        let ctx: Value = serde_json::from_str(
            r#"{"m": {"role": "user", "content": "  hi  ", "n": null}, "xs": ["a", "b"], "flag": true}"#,
        )
        .unwrap();
        // trim_blocks + lstrip_blocks
        assert_eq!(
            render("{% if true %}\n  x\n  {% endif %}\ny", ctx.clone()),
            "  x\ny"
        );
        // Python methods and printing.
        assert_eq!(
            render(
                "{{ m.content.strip() }}|{{ m['role'].upper() }}",
                ctx.clone()
            ),
            "hi|USER"
        );
        assert_eq!(
            render(
                "{% for k, v in m.items() %}{{ k }}={{ v }};{% endfor %}",
                ctx.clone()
            ),
            "role=user;content=  hi  ;n=None;"
        );
        assert_eq!(
            render(
                "{{ flag }} {{ none }} {{ xs }} {{ m.get('missing', 'd') }}",
                ctx.clone()
            ),
            "True None ['a', 'b'] d"
        );
        assert_eq!(
            render(
                "{{ 'a,b'.split(',') | join('+') }} {{ 'x'.startswith('x') }}",
                ctx.clone()
            ),
            "a+b True"
        );
        // Lenient undefined: missing attributes are empty and falsy, even chained.
        assert_eq!(
            render(
                "[{{ m.nope }}][{{ m.nope.deeper }}]{% if not m.nope.x %}ok{% endif %}",
                ctx.clone()
            ),
            "[][]ok"
        );
        // namespace and loop controls
        assert_eq!(
            render(
                "{% set ns = namespace(n=0) %}{% for x in range(5) %}{% if x == 3 %}{% break %}{% endif %}{% set ns.n = ns.n + x %}{% endfor %}{{ ns.n }}",
                ctx.clone()
            ),
            "3"
        );
        assert_eq!(
            render(
                "{{ xs | tojson }} {{ {'k': [1, 2]} | tojson(indent=2) }}",
                ctx
            ),
            "[\"a\", \"b\"] {\n  \"k\": [\n    1,\n    2\n  ]\n}"
        );
    }

    #[test]
    fn raise_exception_is_recognisable() {
        let env = python_like_environment();
        let err = env
            .render_str("{{ raise_exception('nope') }}", ())
            .unwrap_err();
        let raised = std::error::Error::source(&err)
            .and_then(|source| source.downcast_ref::<RaisedByTemplate>())
            .map(|raised| raised.0.clone());
        assert_eq!(raised.as_deref(), Some("nope"));
    }

    #[test]
    fn strftime_now_is_defined() {
        assert_eq!(
            render("{{ strftime_now is defined }}", Value::UNDEFINED),
            "True"
        );
        assert_eq!(
            render("{{ strftime_now('%Y')|length }}", Value::UNDEFINED),
            "4"
        );
    }
}
