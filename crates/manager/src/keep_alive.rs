//! How long a model stays loaded after its last request, and how far a client may say so.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Ollama's `keep_alive`: a duration, `0` to unload as soon as the request ends, or
/// forever (any negative value on the wire). Ordered by length: `For(_) < Forever`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KeepAlive {
    For(Duration),
    Forever,
}

impl KeepAlive {
    /// From seconds as configs and Ollama's API give them: negative = forever.
    pub fn from_secs(secs: i64) -> Self {
        if secs < 0 {
            KeepAlive::Forever
        } else {
            KeepAlive::For(Duration::from_secs(secs as u64))
        }
    }

    pub fn is_zero(self) -> bool {
        self == KeepAlive::For(Duration::ZERO)
    }
}

/// What a client's `keep_alive` may do (config `models.client_keep_alive`,
/// `models.keep_alive_min_seconds`, `models.keep_alive_max_seconds`). One client must not
/// pin a model forever, nor, with a tiny value, make everyone else reload it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAlivePolicy {
    /// Whether requests may set their keep-alive at all; if not, the server's `sleep_idle`
    /// applies to every request.
    pub clients: bool,
    /// The shortest keep-alive a client may ask for (`0` lets `keep_alive: 0` unload).
    pub min: Duration,
    /// The longest; `Forever` lets clients pin a model.
    pub max: KeepAlive,
}

impl Default for KeepAlivePolicy {
    /// What an Ollama user expects: clients may set it, `0` unloads, at most a day.
    fn default() -> Self {
        KeepAlivePolicy {
            clients: true,
            min: Duration::ZERO,
            max: KeepAlive::For(Duration::from_secs(24 * 3600)),
        }
    }
}

impl KeepAlivePolicy {
    /// The keep-alive a request gets: its own, clamped to `min..=max`, or `None` (the
    /// server's default) when it gave none or clients may not set it.
    pub fn apply(&self, asked: Option<KeepAlive>) -> Option<KeepAlive> {
        let asked = asked.filter(|_| self.clients)?;
        let min = KeepAlive::For(self.min);
        // `max` below `min` is a configuration mistake; the longer one wins.
        Some(asked.min(self.max.max(min)).max(min))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> KeepAlive {
        KeepAlive::For(Duration::from_secs(s))
    }

    #[test]
    fn a_clients_keep_alive_is_clamped_to_the_configured_range() {
        let p = KeepAlivePolicy {
            clients: true,
            min: Duration::from_secs(30),
            max: secs(600),
        };
        assert_eq!(p.apply(None), None, "no keep_alive: the server's default");
        assert_eq!(p.apply(Some(secs(0))), Some(secs(30)));
        assert_eq!(p.apply(Some(secs(120))), Some(secs(120)));
        assert_eq!(p.apply(Some(secs(10_000_000))), Some(secs(600)));
        assert_eq!(p.apply(Some(KeepAlive::Forever)), Some(secs(600)));
    }

    #[test]
    fn forever_only_when_the_maximum_allows_it() {
        let default = KeepAlivePolicy::default();
        assert_eq!(default.apply(Some(KeepAlive::Forever)), Some(secs(86_400)));
        assert_eq!(default.apply(Some(secs(0))), Some(secs(0)), "0 unloads");
        let open = KeepAlivePolicy {
            max: KeepAlive::Forever,
            ..default
        };
        assert_eq!(
            open.apply(Some(KeepAlive::Forever)),
            Some(KeepAlive::Forever)
        );
    }

    #[test]
    fn clients_keep_alive_is_ignored_when_config_forbids_it() {
        let p = KeepAlivePolicy {
            clients: false,
            ..Default::default()
        };
        assert_eq!(p.apply(Some(secs(0))), None);
        assert_eq!(p.apply(Some(KeepAlive::Forever)), None);
    }
}
