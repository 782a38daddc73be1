//! `docs/CONFIG.md`, rendered from the settings table (a test keeps the file in step).

use std::fmt::Write;

use crate::schema::Config;
use crate::table::{SETTINGS, Scope, Setting, sections};

const INTRO: &str = "\
# Configuration

<!-- Generated from crates/config/src/table.rs by `config::markdown()`; do not edit.
     After changing the table, run `UPDATE_CONFIG_DOC=1 cargo test -p config` to rewrite it. -->

Every setting is a key in `config.toml` (in `~/.config/llama-dashboard/` by default) and an
environment variable. What applies is, from strongest to weakest: command-line flags
(`serve --port`), environment variables, `config.toml`, the defaults below.

- `llama-dashboard config show` prints the settings in effect (`--json` for JSON); API keys are
  masked unless `--show-secrets` is given.
- `llama-dashboard config set KEY VALUE` checks the value and writes it to `config.toml`,
  keeping the file's comments and layout. The settings API (`PUT /api/config`) does the same.
- An unknown key or `LLAMA_DASHBOARD_*` variable is reported with the closest real one.

Values given as text (variables, flags, `config set`): booleans are `true`/`false`, `yes`/`no`,
`on`/`off` or `1`/`0`; lists are comma-separated (`a,b`) or a TOML array (`[\"a\", \"b,c\"]`);
an empty value unsets an optional setting.
";

/// The Markdown of `docs/CONFIG.md`.
pub fn markdown() -> String {
    let mut out = String::from(INTRO);
    let defaults = Config::default();
    for section in sections() {
        let _ = write!(
            out,
            "\n## `[{section}]`\n\n\
             | Key | Type | Default | Range | Environment variable | Description |\n\
             |-----|------|---------|-------|----------------------|-------------|\n"
        );
        for s in SETTINGS.iter() {
            let Some(key) = s
                .key()
                .filter(|k| k.split_once('.').map(|(s, _)| s) == Some(section))
            else {
                continue;
            };
            let field = key.split_once('.').map_or(key, |(_, f)| f);
            let default = defaults.get(key).unwrap_or_default();
            let default = if default.is_empty() {
                "unset".to_owned()
            } else {
                code(&default)
            };
            let _ = writeln!(
                out,
                "| `{field}` | {} | {default} | {} | {} | {} |",
                s.kind.type_name(),
                cell(&s.kind.range()),
                env_names(s),
                cell(s.about),
            );
        }
    }
    out.push_str(
        "\n## Environment only\n\n\
         | Variable | Type | Default | Description |\n\
         |----------|------|---------|-------------|\n",
    );
    for s in SETTINGS.iter().filter(|s| s.scope == Scope::Env) {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            s.env,
            s.kind.type_name(),
            s.default.unwrap_or_default(),
            cell(s.about),
        );
    }
    out.push_str(
        "\n## Tests and scripts\n\n\
         Read only by the test suite and `scripts/`; the program ignores them (without a warning).\n\n\
         | Variable | Description |\n\
         |----------|-------------|\n",
    );
    for s in SETTINGS.iter().filter(|s| s.scope == Scope::Dev) {
        let _ = writeln!(out, "| `{}` | {} |", s.env, cell(s.about));
    }
    out
}

fn env_names(s: &Setting) -> String {
    s.env_names()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn code(s: &str) -> String {
    format!("`{}`", s.replace('|', "\\|"))
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn config_md_is_generated_from_the_table() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/CONFIG.md");
        let want = super::markdown();
        if std::env::var_os("UPDATE_CONFIG_DOC").is_some() {
            std::fs::write(&path, &want).unwrap();
            return;
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/CONFIG.md does not match the settings table (crates/config/src/table.rs); \
             run `UPDATE_CONFIG_DOC=1 cargo test -p config` to regenerate it"
        );
    }
}
