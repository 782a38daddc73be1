//! Errors, each naming where the bad input came from so the user can go and fix it.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `config.toml`, with a 1-based `(line, column)` when we could locate the value.
    File {
        path: PathBuf,
        position: Option<(usize, usize)>,
    },
    /// An environment variable, e.g. `LLAMA_DASHBOARD_SERVER_PORT`.
    Env { var: String },
    /// A command-line override passed to [`crate::load`].
    Flag,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, position } => {
                write!(f, "{}{}", path.display(), LineCol(position))
            }
            Origin::Env { var } => write!(f, "environment variable {var}"),
            Origin::Flag => f.write_str("command line"),
        }
    }
}

/// `"<origin>: "`, or nothing when the value came straight from a [`crate::Config::set`] call
/// (the caller knows where it came from and adds context itself).
struct Prefix<'a>(&'a Option<Origin>);

impl fmt::Display for Prefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(origin) => write!(f, "{origin}: "),
            None => Ok(()),
        }
    }
}

/// `":line:col"` or nothing.
struct LineCol<'a>(&'a Option<(usize, usize)>);

impl fmt::Display for LineCol<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some((line, col)) => write!(f, ":{line}:{col}"),
            None => Ok(()),
        }
    }
}

struct DidYouMean<'a>(&'a Option<&'static str>);

impl fmt::Display for DidYouMean<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(f, "; did you mean `{s}`?"),
            None => Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key this build does not know (typo, or a key from a newer version).
    #[error("{}unknown key `{key}`{}", Prefix(.origin), DidYouMean(.suggestion))]
    UnknownKey {
        origin: Option<Origin>,
        key: String,
        suggestion: Option<&'static str>,
    },

    /// A known key with a value of the wrong type or out of range.
    #[error("{}{key}: {reason}", Prefix(.origin))]
    InvalidValue {
        origin: Option<Origin>,
        key: String,
        reason: String,
    },

    /// The file is not valid TOML (or not UTF-8); `position` is 1-based `(line, column)`.
    #[error("{}{}: {message}", .path.display(), LineCol(.position))]
    Syntax {
        path: PathBuf,
        position: Option<(usize, usize)>,
        message: String,
    },

    #[error("cannot read {}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },

    #[error("cannot write {}: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },

    /// `config set` found a file it cannot parse and will not overwrite it (that would lose
    /// whatever the user wrote there).
    #[error("refusing to modify {}: {cause}; fix or move the file first", .path.display())]
    RefuseToOverwrite {
        path: PathBuf,
        cause: Box<ConfigError>,
    },

    #[error(
        "cannot determine the home directory; pass --config-dir and --data-dir \
         (or set LLAMA_DASHBOARD_CONFIG_DIR and LLAMA_DASHBOARD_DATA_DIR)"
    )]
    NoHomeDir,
}

impl ConfigError {
    /// The dotted key the error is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { key, .. } | ConfigError::InvalidValue { key, .. } => {
                Some(key)
            }
            ConfigError::RefuseToOverwrite { cause, .. } => cause.key(),
            _ => None,
        }
    }

    /// Attach the origin to a key error that has none yet.
    pub(crate) fn with_origin(mut self, new: Origin) -> Self {
        if let ConfigError::UnknownKey { origin, .. } | ConfigError::InvalidValue { origin, .. } =
            &mut self
            && origin.is_none()
        {
            *origin = Some(new);
        }
        self
    }
}
