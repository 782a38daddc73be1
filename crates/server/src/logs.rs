//! Server logs: what goes to stderr also goes into a ring buffer (for `/api/system/logs`)
//! and a broadcast channel (for `/ws/logs`); the level can be changed at run time
//! (`PUT /api/system/log-level`) through a reloadable filter.

use serde::Serialize;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

/// Lines kept for `/api/system/logs`.
const KEEP: usize = 2000;

#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    /// Unix milliseconds.
    pub timestamp: u64,
    pub level: String,
    pub target: String,
    pub message: String,
}

/// Recent log lines and a live feed of new ones.
pub struct LogBuffer {
    lines: Mutex<VecDeque<LogLine>>,
    live: broadcast::Sender<LogLine>,
}

impl LogBuffer {
    pub fn new() -> Arc<Self> {
        Arc::new(LogBuffer {
            lines: Mutex::new(VecDeque::with_capacity(KEEP)),
            live: broadcast::channel(1024).0,
        })
    }

    fn push(&self, line: LogLine) {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() == KEEP {
            lines.pop_front();
        }
        lines.push_back(line.clone());
        drop(lines);
        let _ = self.live.send(line);
    }

    /// The last `limit` lines at `min_level` or more severe.
    pub fn recent(&self, min_level: tracing::Level, limit: usize) -> Vec<LogLine> {
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<LogLine> = lines
            .iter()
            .rev()
            .filter(|l| level_ok(&l.level, min_level))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LogLine> {
        self.live.subscribe()
    }
}

/// Whether a line's level is at `min` or more severe (`tracing::Level` orders ERROR lowest).
pub fn level_ok(level: &str, min: tracing::Level) -> bool {
    level.parse::<tracing::Level>().is_ok_and(|l| l <= min)
}

/// The tracing layer that feeds a [`LogBuffer`].
struct Capture(Arc<LogBuffer>);

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut v = Fields(String::new(), String::new());
        event.record(&mut v);
        let message = if v.1.is_empty() {
            v.0
        } else if v.0.is_empty() {
            v.1.trim_start().to_string()
        } else {
            format!("{}{}", v.0, v.1)
        };
        let meta = event.metadata();
        self.0.push(LogLine {
            timestamp: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            level: meta.level().to_string(),
            target: meta.target().to_string(),
            message,
        });
    }
}

/// `message` and ` key=value` for the other fields.
struct Fields(String, String);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.1, " {}={value}", field.name());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.1, " {}={value:?}", field.name());
        }
    }
}

/// Handle on the installed logging: the buffer and the level switch.
#[derive(Clone)]
pub struct Logs {
    pub buffer: Arc<LogBuffer>,
    reload: Option<reload::Handle<EnvFilter, Registry>>,
    level: Arc<Mutex<String>>,
}

impl Logs {
    /// Logs kept only in memory (tests, or when a subscriber was installed elsewhere).
    pub fn detached() -> Self {
        Logs {
            buffer: LogBuffer::new(),
            reload: None,
            level: Arc::new(Mutex::new("info".into())),
        }
    }

    /// Installs the global subscriber: stderr (text, or one JSON object per line) and the
    /// buffer, filtered by `filter` (an `EnvFilter` directive such as `info` or
    /// `warn,server=debug`).
    pub fn install(filter: &str, format: config::LogFormat) -> anyhow::Result<Self> {
        let json = format == config::LogFormat::Json;
        let buffer = LogBuffer::new();
        let env = EnvFilter::try_new(filter)?;
        let (filter_layer, handle) = reload::Layer::new(env);
        tracing_subscriber::registry()
            .with(filter_layer)
            .with((!json).then(|| {
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_target(false)
            }))
            .with(json.then(|| {
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_target(false)
            }))
            .with(Capture(buffer.clone()))
            .try_init()?;
        Ok(Logs {
            buffer,
            reload: Some(handle),
            level: Arc::new(Mutex::new(filter.to_string())),
        })
    }

    pub fn level(&self) -> String {
        self.level.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Changes the filter; an invalid directive is an error and changes nothing.
    pub fn set_level(&self, filter: &str) -> Result<(), String> {
        let env = EnvFilter::try_new(filter).map_err(|e| e.to_string())?;
        if let Some(h) = &self.reload {
            h.reload(env).map_err(|e| e.to_string())?;
        }
        *self.level.lock().unwrap_or_else(|p| p.into_inner()) = filter.to_string();
        Ok(())
    }
}
