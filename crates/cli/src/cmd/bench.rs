//! `bench`: llama-bench's pp/tg measurement through the service's benchmark (the model is
//! loaded through the model manager, as the server does); results go to SQLite.

use crate::args::BenchArgs;
use crate::context::{Context, locate};
use crate::output::{self, bytes, count};
use anyhow::Result;
use serde_json::{Map, json};
use service::bench::BenchRequest;
use service::{BenchParams, BenchReport};
use std::process::ExitCode;

/// The config keys `bench`'s flags set: none (its flags are the benchmark's own).
pub fn config_flags(_: &BenchArgs) -> Vec<(String, String)> {
    Vec::new()
}

pub fn run(ctx: &Context, args: BenchArgs) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run_async(ctx, args))
}

async fn run_async(ctx: &Context, args: BenchArgs) -> Result<ExitCode> {
    if args.history {
        return history(ctx, args.model.as_deref(), args.json.json);
    }
    let model = args
        .model
        .as_deref()
        .expect("clap requires a model without --history");
    let entry = locate(ctx, model)?;
    let params = BenchParams {
        n_prompt: args.n_prompt,
        n_gen: args.n_gen,
        reps: args.reps,
        n_batch: args.n_batch,
        n_ubatch: args.n_ubatch,
        n_ctx: args.n_ctx,
        threads: args.threads.unwrap_or_else(service::physical_cores),
        n_gpu_layers: args.n_gpu_layers.unwrap_or(0),
    };
    params.validate()?;
    // This process serves nobody: one slot whose context is just what the test needs.
    let mut load = Map::new();
    load.insert("parallel".into(), json!(1));
    load.insert(
        "ctx_size".into(),
        json!(
            params
                .n_ctx
                .unwrap_or(params.n_prompt + params.n_gen)
                .max(16)
        ),
    );
    if let Some(n) = args.n_gpu_layers {
        load.insert("n_gpu_layers".into(), json!(n));
    }
    let models = service::Models::new(Vec::new(), ctx.store().ok(), ctx.config.models.clone());
    let quiet = args.json.json;
    let id = entry.id.clone();
    let path = entry.path.clone();
    let request = BenchRequest {
        entry,
        params,
        load,
    };
    let outcome = service::bench::run(&models, &request, move |p| {
        if !quiet {
            let what = if p.rep == 0 {
                "warm-up".to_string()
            } else {
                format!("run {}/{}", p.rep, p.reps)
            };
            eprint!("\r\x1b[2K{}: {what}", p.test);
        }
    })
    .await;
    if !quiet {
        eprint!("\r\x1b[2K");
    }
    models.manager().shutdown().await;
    let outcome = outcome?;
    let report = outcome.report;
    if args.json.json {
        output::json(&serde_json::json!({
            "id": outcome.stored_id,
            "model": id,
            "path": path,
            "model_size": report.model_size,
            "model_params": report.model_params,
            "params": report.params,
            "results": report.results,
        }))?;
    } else {
        print_report(&id, &report);
    }
    Ok(ExitCode::SUCCESS)
}

/// The table llama-bench prints, same columns.
fn print_report(id: &str, r: &BenchReport) {
    let mut t = output::table([
        "MODEL", "SIZE", "PARAMS", "BACKEND", "THREADS", "TEST", "T/S",
    ]);
    for res in &r.results {
        t.add_row([
            id.to_string(),
            bytes(r.model_size),
            count(r.model_params),
            "CPU".to_string(),
            r.params.threads.to_string(),
            res.test.clone(),
            format!("{:.2} ± {:.2}", res.avg_ts, res.stddev_ts),
        ]);
    }
    println!("{t}");
}

fn history(ctx: &Context, model: Option<&str>, json: bool) -> Result<ExitCode> {
    let store = ctx.store()?;
    // Accept an alias or path as well as the stored id.
    let filter = model.map(|m| match locate(ctx, m) {
        Ok(entry) => entry.id,
        Err(_) => m.to_string(),
    });
    let runs = store.bench_runs(filter.as_deref())?;
    if json {
        let rows: Vec<_> = runs
            .iter()
            .map(|r| {
                serde_json::json!({"id": r.id, "model": r.model_id, "created_at": r.created_at,
                                   "params": r.params, "results": r.results})
            })
            .collect();
        output::json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        println!("No benchmark runs yet. Run one with: llama-dashboard bench <model>");
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = output::table(["RUN", "WHEN (UTC)", "MODEL", "THREADS", "TEST", "T/S"]);
    for r in &runs {
        let threads = r
            .params
            .get("threads")
            .map_or("-".to_string(), |v| v.to_string());
        for res in r.results.as_array().into_iter().flatten() {
            let test = res
                .get("test")
                .and_then(|v| v.as_str())
                .unwrap_or("?")
                .to_string();
            let avg = res.get("avg_ts").and_then(|v| v.as_f64()).unwrap_or(0.0);
            let sd = res.get("stddev_ts").and_then(|v| v.as_f64()).unwrap_or(0.0);
            t.add_row([
                r.id.to_string(),
                utc(r.created_at),
                r.model_id.clone(),
                threads.clone(),
                test,
                format!("{avg:.2} ± {sd:.2}"),
            ]);
        }
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

/// Unix seconds as `YYYY-MM-DD HH:MM` (UTC), without a date crate for one column.
fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00");
        assert_eq!(super::utc(1_795_314_600), "2026-11-22 02:30");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00");
    }
}
