//! `/metrics`: Prometheus text format through the `prometheus` crate, with llama-server's
//! metric names (`llamacpp:*`) and a `model` label per model, plus process metrics (RSS,
//! file descriptors, CPU) and HTTP request counts, latency and open connections.

use crate::state::AppState;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::collections::HashMap;
use std::sync::Mutex;

pub struct Metrics {
    registry: Registry,
    prompt_tokens: IntCounterVec,
    prompt_seconds: prometheus::CounterVec,
    predicted_tokens: IntCounterVec,
    predicted_seconds: prometheus::CounterVec,
    requests: IntCounterVec,
    prompt_tps: GaugeVec,
    predicted_tps: GaugeVec,
    processing: IntGaugeVec,
    deferred: IntGaugeVec,
    n_tokens_max: IntGaugeVec,
    kv_ratio: GaugeVec,
    kv_tokens: IntGaugeVec,
    pub http_requests: IntCounterVec,
    pub http_latency: HistogramVec,
    pub connections: IntGauge,
    /// Largest request (prompt + generated tokens) per model.
    max_tokens: Mutex<HashMap<String, i64>>,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let m = ["model"];
        let prompt_tokens = IntCounterVec::new(
            opts(
                "llamacpp:prompt_tokens_total",
                "Number of prompt tokens processed.",
            ),
            &m,
        )
        .expect("valid metric");
        let prompt_seconds = prometheus::CounterVec::new(
            opts("llamacpp:prompt_seconds_total", "Prompt process time"),
            &m,
        )
        .expect("valid metric");
        let predicted_tokens = IntCounterVec::new(
            opts(
                "llamacpp:tokens_predicted_total",
                "Number of generation tokens processed.",
            ),
            &m,
        )
        .expect("valid metric");
        let predicted_seconds = prometheus::CounterVec::new(
            opts(
                "llamacpp:tokens_predicted_seconds_total",
                "Predict process time",
            ),
            &m,
        )
        .expect("valid metric");
        let requests = IntCounterVec::new(
            opts(
                "llamacpp:requests_total",
                "Number of generation requests finished.",
            ),
            &m,
        )
        .expect("valid metric");
        let prompt_tps = GaugeVec::new(
            opts(
                "llamacpp:prompt_tokens_seconds",
                "Average prompt throughput in tokens/s.",
            ),
            &m,
        )
        .expect("valid metric");
        let predicted_tps = GaugeVec::new(
            opts(
                "llamacpp:predicted_tokens_seconds",
                "Average generation throughput in tokens/s.",
            ),
            &m,
        )
        .expect("valid metric");
        let processing = IntGaugeVec::new(
            opts(
                "llamacpp:requests_processing",
                "Number of requests processing.",
            ),
            &m,
        )
        .expect("valid metric");
        let deferred = IntGaugeVec::new(
            opts("llamacpp:requests_deferred", "Number of requests deferred."),
            &m,
        )
        .expect("valid metric");
        let n_tokens_max = IntGaugeVec::new(
            opts("llamacpp:n_tokens_max", "Largest observed n_tokens."),
            &m,
        )
        .expect("valid metric");
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
            Box::new(prompt_tokens.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(prompt_seconds.clone()),
            Box::new(predicted_tokens.clone()),
            Box::new(predicted_seconds.clone()),
            Box::new(requests.clone()),
            Box::new(prompt_tps.clone()),
            Box::new(predicted_tps.clone()),
            Box::new(processing.clone()),
            Box::new(deferred.clone()),
            Box::new(n_tokens_max.clone()),
            Box::new(kv_ratio.clone()),
            Box::new(kv_tokens.clone()),
            Box::new(http_requests.clone()),
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
            prompt_tokens,
            prompt_seconds,
            predicted_tokens,
            predicted_seconds,
            requests,
            prompt_tps,
            predicted_tps,
            processing,
            deferred,
            n_tokens_max,
            kv_ratio,
            kv_tokens,
            http_requests,
            http_latency,
            connections,
            max_tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one finished generation.
    pub fn record(&self, model: &str, usage: &service::Usage, t: &service::Timings) {
        self.prompt_tokens
            .with_label_values(&[model])
            .inc_by(u64::from(t.prompt_n));
        self.prompt_seconds
            .with_label_values(&[model])
            .inc_by(t.prompt_ms / 1e3);
        self.predicted_tokens
            .with_label_values(&[model])
            .inc_by(u64::from(t.predicted_n));
        self.predicted_seconds
            .with_label_values(&[model])
            .inc_by(t.predicted_ms / 1e3);
        self.requests.with_label_values(&[model]).inc();
        let n = i64::from(usage.prompt_tokens) + i64::from(usage.completion_tokens);
        let mut max = self.max_tokens.lock().unwrap_or_else(|p| p.into_inner());
        let e = max.entry(model.to_string()).or_insert(0);
        *e = (*e).max(n);
    }

    /// Tokens generated for a model since the server started.
    pub fn tokens_served(&self, model: &str) -> u64 {
        self.predicted_tokens.with_label_values(&[model]).get()
    }

    /// The text exposition, with the per-model gauges read from the loaded models now.
    pub async fn render(&self, state: &AppState) -> String {
        for status in state.models.manager().statuses() {
            let id = status.id.as_str();
            let Some(model) = state.models.peek(id) else {
                continue;
            };
            let h = &model.handle;
            self.processing
                .with_label_values(&[id])
                .set(h.busy_slots() as i64);
            self.deferred
                .with_label_values(&[id])
                .set(h.queue_len() as i64);
            if let Ok(slots) = h.slots().await {
                let used: u64 = slots.iter().map(|s| u64::from(s.n_cached)).sum();
                let total = u64::from(h.info().n_ctx).max(1);
                self.kv_tokens.with_label_values(&[id]).set(used as i64);
                self.kv_ratio
                    .with_label_values(&[id])
                    .set(used as f64 / total as f64);
            }
            let max = self
                .max_tokens
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(id)
                .copied()
                .unwrap_or(0);
            self.n_tokens_max.with_label_values(&[id]).set(max);
            let rate = |tokens: u64, seconds: f64| {
                if seconds > 0.0 {
                    tokens as f64 / seconds
                } else {
                    0.0
                }
            };
            self.prompt_tps.with_label_values(&[id]).set(rate(
                self.prompt_tokens.with_label_values(&[id]).get(),
                self.prompt_seconds.with_label_values(&[id]).get(),
            ));
            self.predicted_tps.with_label_values(&[id]).set(rate(
                self.predicted_tokens.with_label_values(&[id]).get(),
                self.predicted_seconds.with_label_values(&[id]).get(),
            ));
        }
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "encoding metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}
