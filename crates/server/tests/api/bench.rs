//! Benchmarks go through the model manager: they borrow the loaded model or load it like
//! any load (evicting under `models_max`), never a second copy.

use super::*;
use futures_util::StreamExt;
use manager::{Event, UnloadReason};
use tokio::sync::broadcast;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Starts a small benchmark; returns the `/ws/bench` feed (opened before) and the run id.
pub async fn start(s: &TestServer, model: &str) -> (Ws, String) {
    let ws_url = s.base.replace("http://", "ws://") + "/ws/bench";
    let (ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    let (status, run) = s
        .post(
            "/api/bench/run",
            &json!({"model": model, "n_prompt": 8, "n_gen": 2, "reps": 1, "threads": 1}),
        )
        .await;
    assert_eq!(status, 202, "{run}");
    (ws, run["run"]["run_id"].as_str().unwrap().to_string())
}

/// Waits for the end of the run on the feed; returns the completed event's data.
pub async fn completed(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(120), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        assert_ne!(v["type"], "bench.failed", "{v}");
        if v["type"] == "bench.completed" {
            return v["data"].clone();
        }
    }
}

fn drain(rx: &mut broadcast::Receiver<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
    out
}

/// Replays manager events and returns the most models ever loaded or loading at once.
fn most_held_at_once(events: &[Event]) -> usize {
    let mut held = std::collections::BTreeSet::new();
    let mut most = 0;
    for e in events {
        match e {
            Event::Loading { id, .. } | Event::Loaded { id, .. } => {
                held.insert(id.clone());
            }
            Event::Unloaded { id, .. } | Event::Failed { id, .. } | Event::Crashed { id, .. } => {
                held.remove(id);
            }
        }
        most = most.max(held.len());
    }
    most
}

#[tokio::test(flavor = "multi_thread")]
async fn a_benchmark_loads_through_the_manager_and_evicts_under_models_max() {
    let Some(s) = TestServer::start(Opts {
        gemma: true,
        models_max: Some(1),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let mut rx = s.state.models.manager().subscribe();
    // A request holds smol: the benchmark must wait for room, like any load.
    let smol = s.state.models.resolve(SMOL).await.unwrap();
    let held = s.state.models.acquire_entry(&smol, None).await.unwrap();
    let (mut ws, run_id) = start(&s, GEMMA).await;
    let (_, models) = s.get("/api/models").await;
    let find = |models: &Value, id: &str| {
        models["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(
        find(&models, GEMMA)["benchmark"],
        run_id.as_str(),
        "{models}"
    );
    assert_eq!(
        find(&models, GEMMA)["state"],
        "unloaded",
        "no room yet: {models}"
    );
    assert_eq!(find(&models, SMOL)["state"], "loaded", "{models}");
    drop(held);

    let done = completed(&mut ws).await;
    assert_eq!(done["model"], GEMMA);
    assert_eq!(done["report"]["results"][0]["test"], "pp8");

    let events = drain(&mut rx);
    assert_eq!(most_held_at_once(&events), 1, "{events:?}");
    let evicted = events.iter().position(
        |e| matches!(e, Event::Unloaded { id, reason: UnloadReason::Evicted } if id == SMOL),
    );
    let gemma_loading = events
        .iter()
        .position(|e| matches!(e, Event::Loading { id, .. } if id == GEMMA));
    assert!(
        evicted.is_some() && evicted < gemma_loading,
        "smol is evicted before gemma loads: {events:?}"
    );
    // The benchmark's model stays loaded under the manager, as any model does.
    let (_, models) = s.get("/api/models").await;
    let gemma = find(&models, GEMMA);
    assert_eq!(gemma["state"], "loaded", "{gemma}");
    assert_eq!(gemma["benchmark"], Value::Null, "the run is over: {gemma}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_benchmark_borrows_the_loaded_model() {
    let Some(s) = TestServer::start(Opts {
        models_max: Some(1),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let (status, body) = s
        .post(&format!("/api/models/{SMOL}/load"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let before = s.state.models.peek(SMOL).unwrap();
    let mut rx = s.state.models.manager().subscribe();

    let (mut ws, _) = start(&s, SMOL).await;
    let done = completed(&mut ws).await;
    assert_eq!(done["report"]["results"][1]["test"], "tg2");

    assert!(
        drain(&mut rx).is_empty(),
        "no load, no unload: the loaded model is measured"
    );
    let after = s.state.models.peek(SMOL).unwrap();
    assert!(std::sync::Arc::ptr_eq(&before, &after), "the same instance");
    // The model still serves after the benchmark (its slots were left alone).
    let (status, body) = s.post("/v1/chat/completions", &chat(FRANCE, 8)).await;
    assert_eq!(status, 200, "{body}");
}
