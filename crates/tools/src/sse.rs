//! The legacy HTTP+SSE transport (MCP 2024-11-05) as an rmcp `Transport`.
//!
//! rmcp 3 ships only stdio and streamable HTTP clients, but servers people run (FastMCP's
//! `sse`, many hosted ones) still speak the old transport: a `GET` opens an event stream whose
//! first `endpoint` event names the URL to `POST` messages to, and every answer comes back as
//! a `message` event on that stream. rmcp does the protocol; this only moves the frames.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use rmcp::RoleClient;
use rmcp::transport::Transport;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SseError(pub String);

pub struct SseTransport {
    client: reqwest::Client,
    endpoint: Arc<url::Url>,
    headers: Arc<BTreeMap<String, String>>,
    incoming: mpsc::Receiver<RxJsonRpcMessage<RoleClient>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for SseTransport {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// One SSE event is at most this big: a server cannot make us buffer without end.
const MAX_EVENT_BYTES: usize = 16 << 20;

impl SseTransport {
    /// Opens the event stream and waits for the `endpoint` event.
    pub async fn connect(
        client: reqwest::Client,
        url: &str,
        headers: &BTreeMap<String, String>,
    ) -> Result<Self, SseError> {
        let base = url::Url::parse(url).map_err(|e| SseError(format!("bad URL {url:?}: {e}")))?;
        let mut req = client.get(base.clone()).header("accept", "text/event-stream");
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.map_err(|e| SseError(format!("GET {url}: {e}")))?;
        if !resp.status().is_success() {
            return Err(SseError(format!("GET {url}: HTTP {}", resp.status())));
        }
        let mut events = sse_stream::SseStream::from_bytes_stream(resp.bytes_stream());
        // The first event names where to POST.
        let endpoint = loop {
            match events.next().await {
                Some(Ok(ev)) if ev.event.as_deref() == Some("endpoint") => {
                    let data = ev.data.unwrap_or_default();
                    break base
                        .join(data.trim())
                        .map_err(|e| SseError(format!("bad endpoint event {data:?}: {e}")))?;
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(SseError(format!("event stream from {url}: {e}"))),
                None => return Err(SseError(format!("{url} closed the event stream before naming an endpoint"))),
            }
        };
        if endpoint.origin() != base.origin() {
            // A server must not send our headers (tokens) to another origin.
            return Err(SseError(format!("the endpoint {endpoint} is not on {url}'s origin")));
        }
        let (tx, incoming) = mpsc::channel(64);
        let reader = tokio::spawn(async move {
            while let Some(ev) = events.next().await {
                let Ok(ev) = ev else { break };
                if ev.event.as_deref().is_some_and(|e| e != "message") {
                    continue;
                }
                let Some(data) = ev.data else { continue };
                if data.len() > MAX_EVENT_BYTES {
                    tracing::warn!("MCP SSE event of {} bytes dropped", data.len());
                    continue;
                }
                match serde_json::from_str::<RxJsonRpcMessage<RoleClient>>(&data) {
                    Ok(msg) => {
                        if tx.send(msg).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => tracing::debug!("MCP SSE message not understood: {e}"),
                }
            }
        });
        Ok(Self { client, endpoint: Arc::new(endpoint), headers: Arc::new(headers.clone()), incoming, reader })
    }
}

impl Transport<RoleClient> for SseTransport {
    type Error = SseError;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let client = self.client.clone();
        let endpoint = self.endpoint.clone();
        let headers = self.headers.clone();
        async move {
            let mut req = client.post((*endpoint).clone()).json(&item);
            for (k, v) in headers.iter() {
                req = req.header(k, v);
            }
            let resp = req.send().await.map_err(|e| SseError(format!("POST {endpoint}: {e}")))?;
            if !resp.status().is_success() {
                return Err(SseError(format!("POST {endpoint}: HTTP {}", resp.status())));
            }
            Ok(())
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<RxJsonRpcMessage<RoleClient>>> + Send {
        self.incoming.recv()
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.reader.abort();
        self.incoming.close();
        Ok(())
    }
}
