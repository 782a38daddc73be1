//! `ps`: the models a running server has loaded, as `ollama ps` shows them. Loaded models
//! live in the server's process, so this asks it: its `GET /api/ps` (Ollama's route, the
//! server's `service::Models` behind it) at `server.host:server.port`, with the configured
//! key.

use crate::args::PsArgs;
use crate::context::Context;
use crate::output;
use anyhow::{Context as _, Result, bail};
use serde::Deserialize;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

#[derive(Debug, Deserialize, serde::Serialize)]
struct Ps {
    models: Vec<Loaded>,
}

#[derive(Debug, Deserialize, serde::Serialize)]
struct Loaded {
    name: String,
    digest: String,
    size: u64,
    size_vram: u64,
    expires_at: String,
    context_length: u64,
}

pub fn run(ctx: &Context, args: PsArgs) -> Result<ExitCode> {
    let server = &ctx.config.server;
    let url = match args.url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            let host = server::listen::hosts(&server.host)
                .next()
                .unwrap_or("127.0.0.1")
                .to_string();
            // A wildcard address is reached on loopback.
            let host = match host.as_str() {
                "0.0.0.0" => "127.0.0.1".to_string(),
                "::" | "[::]" => "[::1]".to_string(),
                h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
                _ => host,
            };
            format!("http://{host}:{}", server.port)
        }
    };
    let key = server.api_key.clone().or(server.admin_api_key.clone());
    let ps: Ps = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(fetch(&url, key.as_deref()))?;
    if args.json.json {
        output::json(&ps)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = output::table(["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]);
    let now = SystemTime::now();
    for m in &ps.models {
        t.add_row([
            m.name.clone(),
            m.digest.chars().take(12).collect(),
            output::bytes(m.size),
            processor(m.size, m.size_vram),
            m.context_length.to_string(),
            until(&m.expires_at, now),
        ]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

async fn fetch(url: &str, key: Option<&str>) -> Result<Ps> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut req = client.get(format!("{url}/api/ps"));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.with_context(|| {
        format!(
            "no server answers at {url} (start one with `llama-dashboard serve`, or pass --url)"
        )
    })?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        bail!("{url}/api/ps answered {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("{url}/api/ps: not Ollama's ps answer"))
}

/// Where the model is, as `ollama ps` says it.
fn processor(size: u64, vram: u64) -> String {
    if vram == 0 || size == 0 {
        return "100% CPU".into();
    }
    if vram >= size {
        return "100% GPU".into();
    }
    let gpu = (vram as f64 / size as f64 * 100.0).round() as u64;
    format!("{}%/{gpu}% CPU/GPU", 100 - gpu)
}

/// When the model will sleep, from now.
fn until(expires_at: &str, now: SystemTime) -> String {
    let Ok(at) = humantime::parse_rfc3339(expires_at) else {
        return expires_at.to_string();
    };
    let Ok(left) = at.duration_since(now) else {
        return "now".into();
    };
    let secs = left.as_secs();
    match secs {
        s if s > 100 * 365 * 24 * 3600 => "Forever".into(),
        s if s < 60 => format!("{s} seconds from now"),
        s if s < 3600 => format!("{} minutes from now", s / 60),
        s if s < 48 * 3600 => format!("{} hours from now", s / 3600),
        s => format!("{} days from now", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processors_and_times_as_ollama_shows_them() {
        assert_eq!(processor(100, 0), "100% CPU");
        assert_eq!(processor(100, 100), "100% GPU");
        assert_eq!(processor(100, 25), "75%/25% CPU/GPU");
        let now = humantime::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        assert_eq!(until("2026-01-01T00:04:30Z", now), "4 minutes from now");
        assert_eq!(until("2318-01-01T00:00:00Z", now), "Forever");
        assert_eq!(until("2025-01-01T00:00:00Z", now), "now");
    }
}
