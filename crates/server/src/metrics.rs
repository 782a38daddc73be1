//! `/metrics`: Prometheus text format through the `prometheus` crate: llama-server's
//! families (`llamacpp:*`, its names, types, help texts and meanings) from what the service
//! counts per model (`service::serving`), plus KV-cache gauges, process metrics (RSS, file
//! descriptors, CPU) and HTTP request counts, latency and open connections.

use crate::state::AppState;
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use service::serving::ServedFigures;

pub struct Metrics {
    registry: Registry,
    kv_ratio: GaugeVec,
    kv_tokens: IntGaugeVec,
    pub http_requests: IntCounterVec,
    /// The requests answered with a 4xx or 5xx (seed 003's `*_errors_total`).
    pub http_errors: IntCounterVec,
    pub http_latency: HistogramVec,
    pub connections: IntGauge,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// llama-server's families: name (after `llamacpp:`), help, type, value. Its help texts and
/// types, so that its scrapers and dashboards read ours unchanged.
fn llama_server_families(f: &ServedFigures) -> Vec<(&'static str, &'static str, MetricType, f64)> {
    use MetricType::{COUNTER, GAUGE};
    vec![
        (
            "prompt_tokens_total",
            "Number of prompt tokens processed, excluding cached tokens",
            COUNTER,
            f.prompt.tokens as f64,
        ),
        (
            "prompt_tokens_cached_total",
            "Number of prompt tokens reused from the cache",
            COUNTER,
            f.cached as f64,
        ),
        (
            "prompt_seconds_total",
            "Total time spent processing prompts",
            COUNTER,
            f.prompt.seconds,
        ),
        (
            "tokens_predicted_total",
            "Number of generation tokens processed",
            COUNTER,
            f.predict.tokens as f64,
        ),
        (
            "tokens_predicted_seconds_total",
            "Total time spent generating tokens",
            COUNTER,
            f.predict.seconds,
        ),
        (
            "n_decode_total",
            "Total number of llama_decode() calls, excluding speculative decoding and multimodal decoding",
            COUNTER,
            f.decode_calls as f64,
        ),
        (
            "n_tokens_max",
            "Largest observed sequence length (prompt + generation)",
            COUNTER,
            f.max_seq_tokens as f64,
        ),
        // No speculative decoding here: llama-server's families, always 0.
        (
            "spec_decode_num_draft_tokens_total",
            "Speculative: Total draft tokens generated",
            COUNTER,
            0.0,
        ),
        (
            "spec_decode_num_accepted_tokens_total",
            "Speculative: Total draft tokens accepted by the target model",
            COUNTER,
            0.0,
        ),
        (
            "spec_decode_num_drafts_total",
            "Speculative: Total speculative decoding verification steps",
            COUNTER,
            0.0,
        ),
        (
            "requests_total",
            "Number of generation requests finished",
            COUNTER,
            f.requests as f64,
        ),
        (
            "prompt_tokens_seconds",
            "Average prompt throughput in tokens/s",
            GAUGE,
            f.prompt_window.per_second(),
        ),
        (
            "predicted_tokens_seconds",
            "Average generation throughput in tokens/s",
            GAUGE,
            f.predict_window.per_second(),
        ),
        (
            "requests_processing",
            "Number of requests processing",
            GAUGE,
            f.processing as f64,
        ),
        (
            "requests_deferred",
            "Number of requests deferred",
            GAUGE,
            f.deferred as f64,
        ),
        (
            "n_busy_slots_per_decode",
            "Average number of busy slots per llama_decode() call",
            GAUGE,
            f.busy_slots_per_decode(),
        ),
        // Not llama-server's (it only logs its prompt cache): the host-RAM prompt cache
        // (`--cache-ram`), in the same namespace so that it sits with the other figures.
        (
            "prompt_cache_hits_total",
            "Number of prompts restored from the host-RAM prompt cache",
            COUNTER,
            f.prompt_cache_hits as f64,
        ),
        (
            "prompt_cache_bytes",
            "Bytes held by the host-RAM prompt cache",
            GAUGE,
            f.prompt_cache_bytes as f64,
        ),
    ]
}

/// The `llamacpp:*` families from every model's figures. Each family has one series without
/// labels, the whole server (what llama-server, which serves one model, reports: its
/// clients read the unlabelled line), and one `{model="…"}` series per model that has been
/// loaded. Select `{model=""}` for the total, `{model!=""}` for the breakdown.
fn llama_families(served: &[(String, ServedFigures)]) -> Vec<MetricFamily> {
    let mut total = ServedFigures::default();
    for (_, f) in served {
        total.merge(f);
    }
    let mut families: Vec<MetricFamily> = llama_server_families(&total)
        .into_iter()
        .map(|(name, help, kind, value)| {
            let mut family = MetricFamily::default();
            family.set_name(format!("llamacpp:{name}"));
            family.set_help(help.to_string());
            family.set_field_type(kind);
            family.mut_metric().push(sample(kind, value, None));
            family
        })
        .collect();
    for (id, f) in served {
        for (family, (_, _, kind, value)) in families.iter_mut().zip(llama_server_families(f)) {
            family.mut_metric().push(sample(kind, value, Some(id)));
        }
    }
    families
}

fn sample(kind: MetricType, value: f64, model: Option<&str>) -> Metric {
    let mut m = Metric::default();
    if let Some(model) = model {
        let mut label = LabelPair::default();
        label.set_name("model".to_string());
        label.set_value(model.to_string());
        m.set_label(vec![label]);
    }
    if kind == MetricType::COUNTER {
        let mut c = Counter::default();
        c.set_value(value);
        m.set_counter(c);
    } else {
        let mut g = Gauge::default();
        g.set_value(value);
        m.set_gauge(g);
    }
    m
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let m = ["model"];
        let kv_ratio = GaugeVec::new(
            opts(
                "llamacpp:kv_cache_usage_ratio",
                "KV-cache usage. 1 means 100 percent usage.",
            ),
            &m,
        )
        .expect("valid metric");
        let kv_tokens = IntGaugeVec::new(opts("llamacpp:kv_cache_tokens", "KV-cache tokens."), &m)
            .expect("valid metric");
        let http_requests = IntCounterVec::new(
            opts(
                "http_requests_total",
                "HTTP requests by method, route and status.",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let http_errors = IntCounterVec::new(
            opts(
                "http_request_errors_total",
                "HTTP requests answered with an error (4xx, 5xx) by method, route and status.",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let http_latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency (until the response head; streams continue after).",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                60.0,
            ]),
            &["method", "route"],
        )
        .expect("valid metric");
        let connections = IntGauge::new(
            "http_connections_open",
            "HTTP requests being served right now (streams included).",
        )
        .expect("valid metric");
        for c in [
            Box::new(kv_ratio.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(kv_tokens.clone()),
            Box::new(http_requests.clone()),
            Box::new(http_errors.clone()),
            Box::new(http_latency.clone()),
            Box::new(connections.clone()),
        ] {
            registry.register(c).expect("unique metric names");
        }
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("unique metric names");
        Metrics {
            registry,
            kv_ratio,
            kv_tokens,
            http_requests,
            http_errors,
            http_latency,
            connections,
        }
    }

    /// Tokens generated by a model since the server started.
    pub fn tokens_served(state: &AppState, model: &str) -> u64 {
        state
            .models
            .served(false)
            .into_iter()
            .find(|(id, _)| id == model)
            .map_or(0, |(_, f)| f.predict.tokens)
    }

    /// The text exposition: llama-server's families from what the models served (this
    /// scrape starts their throughput windows again), then the KV-cache gauges of the
    /// loaded models, the HTTP and the process families. Reads no model that is not loaded,
    /// so a scrape never wakes a sleeping one.
    pub async fn render(&self, state: &AppState) -> String {
        let served = state.models.served(true);
        for (id, _) in &served {
            let Some(model) = state.models.peek(id) else {
                continue;
            };
            let h = &model.handle;
            if let Ok(slots) = h.slots().await {
                let used: u64 = slots.iter().map(|s| u64::from(s.n_cached)).sum();
                let total = u64::from(h.info().n_ctx).max(1);
                self.kv_tokens.with_label_values(&[id]).set(used as i64);
                self.kv_ratio
                    .with_label_values(&[id])
                    .set(used as f64 / total as f64);
            }
        }
        let mut families = llama_families(&served);
        families.extend(self.registry.gather());
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&families, &mut buf) {
            tracing::error!(error = %e, "encoding metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}
