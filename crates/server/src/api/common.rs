//! Helpers every API family uses: leasing the model a request names, keep-alive values,
//! starting a generation with the per-request timeout, and SSE framing. The steps to a model
//! return the service's error (each family shapes it), so the chat sessions' runner
//! (`api::sessions`) takes the same steps.

use crate::error::ApiError;
use crate::state::{AppState, SharedState};
use axum::response::sse::Event as SseEvent;
use manager::KeepAlive;
use serde_json::Value;
use service::{Generation, Output, Request, ServiceError};
use std::time::{Duration, Instant};

/// `n`: completions per prompt, at least 1 (their number across the request is
/// `limits.max_completions`, checked with the rest of the limits).
pub fn choices(n: Option<u32>) -> Result<usize, ApiError> {
    match n {
        None => Ok(1),
        Some(0) => Err(ApiError::invalid("n", "must be at least 1")),
        Some(n) => Ok(n as usize),
    }
}

/// Ollama-style `keep_alive`: seconds (negative = forever) or a duration such as `"5m"`.
pub fn keep_alive(v: Option<&Value>) -> Result<Option<KeepAlive>, ApiError> {
    let bad = || ApiError::invalid("keep_alive", "must be seconds or a duration such as \"5m\"");
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let secs = n.as_f64().ok_or_else(bad)?;
            Ok(Some(if secs < 0.0 {
                KeepAlive::Forever
            } else {
                KeepAlive::For(Duration::from_secs_f64(secs.min(1e9)))
            }))
        }
        Some(Value::String(s)) => {
            let s = s.trim();
            if let Ok(n) = s.parse::<f64>() {
                return keep_alive(Some(&serde_json::json!(n)));
            }
            if s.starts_with('-') {
                return Ok(Some(KeepAlive::Forever));
            }
            humantime::parse_duration(s)
                .map(|d| Some(KeepAlive::For(d)))
                .map_err(|_| bad())
        }
        Some(_) => Err(bad()),
    }
}

/// A generation that gives up when the request's time is over.
pub struct Timed {
    pub generation: Generation,
    pub model: String,
    deadline: Deadline,
}

impl Timed {
    /// The next output; a timeout ends the generation with an error.
    pub async fn next(&mut self) -> Option<Result<Output, ServiceError>> {
        let left = self.deadline.left();
        match tokio::time::timeout(left, self.generation.next()).await {
            Ok(o) => o,
            Err(_) => Some(Err(self.timed_out())),
        }
    }

    fn timed_out(&self) -> ServiceError {
        ServiceError::TimedOut {
            seconds: self.deadline.seconds,
        }
    }

    pub async fn collect(self) -> Result<service::Collected, ServiceError> {
        let left = self.deadline.left();
        let timed_out = self.timed_out();
        match tokio::time::timeout(left, self.generation.collect()).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(timed_out),
        }
    }
}

/// The request's deadline: `server.timeout_seconds` from now. Loading the model, waiting
/// for a free one and generating all count against it. It keeps the seconds for the error
/// that names them, so the configuration is read once per request.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    seconds: u64,
}

impl Deadline {
    fn left(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }
}

pub fn deadline(config: &config::Config) -> Deadline {
    let seconds = config.server.timeout_seconds;
    Deadline {
        at: Instant::now() + Duration::from_secs(seconds),
        seconds,
    }
}

/// A lease on the model a request names (`None`: names none), picked by [`pick`] and
/// loaded if needed, given up with 503 `NotReadyInTime` when it
/// is not ready by `deadline`. The load itself goes on in the manager (it is not the request's
/// to cancel), so the next request finds the model loaded.
pub async fn acquire(
    state: &AppState,
    named: Option<&str>,
    keep_alive: Option<KeepAlive>,
    deadline: Deadline,
) -> Result<(catalog::ModelEntry, service::ModelLease), ServiceError> {
    let entry = pick(state, named).await?;
    acquire_entry(state, entry, keep_alive, deadline).await
}

/// The model a request names, picked once ([`service::Models::pick`]) and checked before
/// the request takes its place among those in flight: with `models.autoload` off it must
/// be loaded.
pub async fn pick(
    state: &AppState,
    named: Option<&str>,
) -> Result<catalog::ModelEntry, ServiceError> {
    let entry = state.models.pick(named).await?;
    state.models.check_autoload(&entry)?;
    Ok(entry)
}

/// A lease on the model a conversation names, for rendering it without generating (token
/// counts, `/apply-template`): its image parts are refused on a model that cannot read them
/// ([`service::Models::check_chat_for`]), as the chat route refuses them.
pub async fn lease_for_chat(
    state: &AppState,
    named: Option<&str>,
    chat: &service::ChatInput,
) -> Result<(String, service::ModelLease), ServiceError> {
    let entry = pick(state, named).await?;
    state.models.check_chat_for(&entry, chat).await?;
    let (entry, lease) = acquire_entry(state, entry, None, deadline(&state.config())).await?;
    Ok((entry.id, lease))
}

/// The one token count of a conversation's prompt (every API family's token-count route, the
/// context policy of sessions and Ollama's chat): rendered and tokenized as generation would
/// render it, image parts refused on a text model as the chat route refuses them; nothing is
/// generated. With the context one request has on the model (a slot's).
pub async fn measure_chat(
    state: &AppState,
    named: Option<&str>,
    chat: service::ChatInput,
) -> Result<service::fit::Measure, ServiceError> {
    let (id, lease) = lease_for_chat(state, named, &chat).await?;
    let template = state.models.template_choice(&id).await?;
    let n_ctx = lease.handle.info().n_ctx_slot;
    let tokens = service::generate::count_chat_tokens(&lease, &template, chat).await?;
    Ok(service::fit::Measure { tokens, n_ctx })
}

/// [`acquire`] for a model already picked.
pub async fn acquire_entry(
    state: &AppState,
    entry: catalog::ModelEntry,
    keep_alive: Option<KeepAlive>,
    deadline: Deadline,
) -> Result<(catalog::ModelEntry, service::ModelLease), ServiceError> {
    let acquiring = state.models.acquire_entry(&entry, keep_alive);
    match tokio::time::timeout_at(deadline.at.into(), acquiring).await {
        Ok(lease) => Ok((entry, lease?)),
        Err(_) => Err(ServiceError::NotReadyInTime {
            model: entry.id,
            seconds: deadline.seconds,
        }
        .into()),
    }
}

/// Checks the request against the `[limits]`, takes a place among the requests in
/// flight, resolves the model, takes a lease (loading
/// it if needed) and starts generating, all within the request's deadline.
pub async fn start(
    state: &SharedState,
    model: Option<&str>,
    keep_alive: Option<KeepAlive>,
    req: Request,
) -> Result<Timed, ServiceError> {
    let mut all = start_all(state, model, keep_alive, vec![req]).await?;
    Ok(all.remove(0))
}

/// [`start`] for every generation of one request (its prompts times `n`, in that order):
/// all are checked against `[limits]` (their number against `limits.max_completions`) and
/// all take their place among the requests in flight before the model is acquired or any
/// is queued.
pub async fn start_all(
    state: &SharedState,
    model: Option<&str>,
    keep_alive: Option<KeepAlive>,
    mut reqs: Vec<Request>,
) -> Result<Vec<Timed>, ServiceError> {
    let config = state.config();
    service::limits::check_all(&mut reqs, &config.limits)?;
    let deadline = deadline(&config);
    let picked = pick(state, model).await?;
    for req in &reqs {
        state.models.check_for(&picked, req).await?;
    }
    let tickets = reqs
        .iter()
        .map(|_| state.models.admit())
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::with_capacity(reqs.len());
    for (req, ticket) in reqs.into_iter().zip(tickets) {
        let (entry, lease) = acquire_entry(state, picked.clone(), keep_alive, deadline).await?;
        let template = state.models.template_choice(&entry.id).await?;
        let generation = service::generate::start(lease, &template, req, ticket).await?;
        out.push(Timed {
            generation,
            model: state.models.public_id(&entry),
            deadline,
        });
    }
    Ok(out)
}

/// Runs every generation to its end, together; the first failure fails them all.
pub async fn collect_all(timeds: Vec<Timed>) -> Result<Vec<service::Collected>, ServiceError> {
    futures_util::future::try_join_all(timeds.into_iter().map(Timed::collect)).await
}

/// `data: {json}`.
pub fn sse_json(v: &Value) -> SseEvent {
    SseEvent::default().data(v.to_string())
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A random id with a prefix (`chatcmpl-…`).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// The error object an SSE stream ends with when generation fails midway.
pub fn stream_error(e: ServiceError) -> Value {
    let api: ApiError = e.into();
    serde_json::json!({"error": {
        "message": api.message,
        "type": "server_error",
        "code": api.status.as_u16(),
    }})
}

/// Pumps a generation into SSE events: `first` go out at once, then `render` turns each
/// output into events (with `ctx` for what the format remembers between outputs) until the
/// generation ends; a failure midway ends the stream with `on_error`'s event. Dropping the
/// stream (client gone) drops the generation, which cancels it.
pub fn sse_events<C: Send + 'static>(
    timed: Timed,
    ctx: C,
    first: Vec<SseEvent>,
    mut render: impl FnMut(&mut C, Output) -> Vec<SseEvent> + Send + 'static,
    on_error: impl FnOnce(&mut C, ServiceError) -> SseEvent + Send + 'static,
) -> impl futures_util::Stream<Item = Result<SseEvent, std::convert::Infallible>> {
    sse_events_all(
        vec![timed],
        ctx,
        first,
        move |ctx, _, output| render(ctx, output),
        on_error,
    )
}

/// A protocol's typed events (Responses' `response.*`, Anthropic's `message_*`): its state
/// turns each output into events kept in a buffer, which the stream drains.
pub trait EventWriter: Send + 'static {
    fn on_output(&mut self, output: Output);
    /// The event a failure midway ends the stream with.
    fn on_error(&mut self, e: ServiceError) -> SseEvent;
    /// The events written since the last call.
    fn take(&mut self) -> Vec<SseEvent>;
}

/// [`sse_events`] for an [`EventWriter`]: what it wrote before the generation's first output
/// goes out first.
pub fn typed_sse_events<W: EventWriter>(
    timed: Timed,
    mut writer: W,
) -> impl futures_util::Stream<Item = Result<SseEvent, std::convert::Infallible>> {
    let first = writer.take();
    sse_events(
        timed,
        writer,
        first,
        |w, output| {
            w.on_output(output);
            w.take()
        },
        |w, e| w.on_error(e),
    )
}

/// [`sse_events`] over several generations of one request, their outputs interleaved as
/// they come; `render` gets each output's generation index. The first failure ends the
/// stream (and so every generation).
pub fn sse_events_all<C: Send + 'static>(
    timeds: Vec<Timed>,
    ctx: C,
    first: Vec<SseEvent>,
    render: impl FnMut(&mut C, usize, Output) -> Vec<SseEvent> + Send + 'static,
    on_error: impl FnOnce(&mut C, ServiceError) -> SseEvent + Send + 'static,
) -> impl futures_util::Stream<Item = Result<SseEvent, std::convert::Infallible>> {
    use futures_util::StreamExt;
    type Outputs = futures_util::stream::SelectAll<
        std::pin::Pin<
            Box<dyn futures_util::Stream<Item = (usize, Result<Output, ServiceError>)> + Send>,
        >,
    >;
    struct Pump<C, R, E> {
        outputs: Outputs,
        ctx: C,
        queue: std::collections::VecDeque<SseEvent>,
        render: R,
        on_error: Option<E>,
        done: bool,
    }
    let outputs: Outputs =
        futures_util::stream::select_all(timeds.into_iter().enumerate().map(|(i, timed)| {
            futures_util::stream::unfold(timed, move |mut t| async move {
                t.next().await.map(|o| ((i, o), t))
            })
            .boxed()
        }));
    let pump = Pump {
        outputs,
        ctx,
        queue: first.into(),
        render,
        on_error: Some(on_error),
        done: false,
    };
    futures_util::stream::unfold(pump, |mut p| async move {
        loop {
            if let Some(e) = p.queue.pop_front() {
                return Some((Ok(e), p));
            }
            if p.done {
                return None;
            }
            match p.outputs.next().await {
                Some((i, Ok(o))) => {
                    let events = (p.render)(&mut p.ctx, i, o);
                    p.queue.extend(events);
                }
                Some((_, Err(e))) => {
                    p.done = true;
                    if let Some(f) = p.on_error.take() {
                        let ev = f(&mut p.ctx, e);
                        p.queue.push_back(ev);
                    }
                }
                None => p.done = true,
            }
        }
    })
}
