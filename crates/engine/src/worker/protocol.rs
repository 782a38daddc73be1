//! The messages between a server and its model workers, and their framing.
//!
//! One pipe each way (the worker's stdin and a copy of its stdout). Each frame is a
//! little-endian `u32` length and that many bytes of MessagePack (`rmp-serde`, structs as
//! maps): self-describing, so a JSON schema inside a grammar travels as the value it is,
//! and exact for floats (a banned token's `-inf` bias, logprobs), which JSON is not.
//! Calls carry an id; replies, events and progress name the call they belong to, so any
//! number of requests share the pipe.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::backend::BackendOptions;
use crate::bench::{BenchParams, BenchProgress, BenchReport};
use crate::embed::{EmbedRequest, Embedding, RerankScore};
use crate::error::EngineError;
use crate::host::{HostStats, TokenPiece};
use crate::load::ModelInfo;
use crate::lora::{LoraAdapterInfo, LoraScale};
use crate::params::{ContextParams, ModelParams};
use crate::request::{Caps, Event, GenerateRequest};
use crate::slot::{SlotFileInfo, SlotInfo};

/// Frames larger than this are refused (a corrupt length must not allocate gigabytes).
/// Requests are bounded far below by the server's limits; an embedding reply is the largest.
const MAX_FRAME: usize = 1 << 30;

/// Server → worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToWorker {
    /// The first message: what to load.
    Load(Box<LoadOrder>),
    Call { id: u64, call: Call },
    /// The caller of `id` went away (a dropped event stream): stop it.
    Cancel { id: u64 },
    /// Finish: running requests end with `Shutdown`, the model is freed, the worker exits.
    Shutdown,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct LoadOrder {
    pub model: ModelParams,
    pub context: ContextParams,
    pub backend: BackendOptions,
    /// The counters' values so far (they outlive loads, see `HostCounters`).
    pub counters: HostStats,
}

/// One [`crate::ModelHandle`] method.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Call {
    /// `caps` travels apart: the request's own field is never serialized (clients must
    /// not set it).
    Generate {
        req: Box<GenerateRequest>,
        caps: Caps,
    },
    Tokenize {
        text: String,
        add_special: bool,
        parse_special: bool,
    },
    Detokenize(Vec<i32>),
    TokenPieces(Vec<i32>),
    Embed {
        req: Box<EmbedRequest>,
        caps: Caps,
    },
    Rerank {
        query: String,
        documents: Vec<String>,
    },
    LoraAdapters,
    SetLoraScales(Vec<LoraScale>),
    Slots,
    SaveSlot { id: u32, path: std::path::PathBuf },
    RestoreSlot { id: u32, path: std::path::PathBuf },
    EraseSlot(u32),
    Bench(BenchParams),
}

/// Worker → server.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromWorker {
    LoadProgress(f32),
    Loaded(Box<ModelInfo>),
    LoadFailed(EngineError),
    Reply {
        id: u64,
        result: Result<Answer, EngineError>,
    },
    /// An event of the stream `id` started (`Answer::Stream`).
    Event { id: u64, event: Event },
    BenchProgress { id: u64, progress: BenchProgress },
    /// The scheduler's counters and gauges, sent whenever they changed before any other
    /// message (so a caller that sees `Done` also sees the request counted), and on a tick.
    Stats {
        counters: HostStats,
        queue_len: u64,
        busy_slots: u64,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Answer {
    /// A generation started; its events follow as `FromWorker::Event`.
    Stream {
        task_id: u64,
        logit_bias: Vec<(i32, f32)>,
        prompt_tokens: u32,
    },
    Tokens(Vec<i32>),
    Text(String),
    Pieces(Vec<TokenPiece>),
    Embeddings(Vec<Embedding>),
    Scores(Vec<RerankScore>),
    Adapters(Vec<LoraAdapterInfo>),
    Done,
    Slots(Vec<SlotInfo>),
    SlotFile(SlotFileInfo),
    Erased(u32),
    Bench(Box<BenchReport>),
}

/// A frame, ready to write.
pub(crate) fn encode<T: Serialize>(msg: &T) -> io::Result<Vec<u8>> {
    let mut out = vec![0u8; 4];
    rmp_serde::encode::write_named(&mut out, msg).map_err(io::Error::other)?;
    let len = u32::try_from(out.len() - 4)
        .ok()
        .filter(|&n| n as usize <= MAX_FRAME)
        .ok_or_else(|| io::Error::other("message too large for the worker pipe"))?;
    out[..4].copy_from_slice(&len.to_le_bytes());
    Ok(out)
}

pub(crate) fn write_frame(w: &mut impl Write, frame: &[u8]) -> io::Result<()> {
    w.write_all(frame)
}

/// The next message; `Ok(None)` at a clean end of the stream.
pub(crate) fn read<T: DeserializeOwned>(r: &mut impl Read) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::other(format!("frame of {len} bytes")));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    rmp_serde::from_slice(&buf)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Prompt, Timings};
    use crate::sampling::Grammar;

    fn round_trip<T: Serialize + DeserializeOwned>(msg: &T) -> T {
        let frame = encode(msg).unwrap();
        read(&mut &frame[..]).unwrap().unwrap()
    }

    #[test]
    fn requests_cross_with_schemas_caps_and_infinite_biases() {
        let mut req = GenerateRequest::new(Prompt::text("hi"));
        req.grammar = Some(Grammar::JsonSchema(
            serde_json::json!({"type": "object", "properties": {"a": {"type": "integer"}}}),
        ));
        req.stop = vec!["\n\n".into()];
        let caps = Caps {
            grammar_depth: 7,
            ..Caps::default()
        };
        let back = round_trip(&ToWorker::Call {
            id: 3,
            call: Call::Generate {
                req: Box::new(req.clone()),
                caps,
            },
        });
        let ToWorker::Call {
            id: 3,
            call: Call::Generate { req: r, caps: c },
        } = back
        else {
            panic!("{back:?}")
        };
        assert_eq!(*r, req);
        assert_eq!(c, caps);

        let back = round_trip(&FromWorker::Reply {
            id: 9,
            result: Ok(Answer::Stream {
                task_id: 1,
                logit_bias: vec![(2, f32::NEG_INFINITY), (5, 0.5)],
                prompt_tokens: 4,
            }),
        });
        let FromWorker::Reply {
            result: Ok(Answer::Stream { logit_bias, .. }),
            ..
        } = back
        else {
            panic!("{back:?}")
        };
        assert_eq!(logit_bias, vec![(2, f32::NEG_INFINITY), (5, 0.5)]);
    }

    #[test]
    fn events_and_errors_cross_unchanged() {
        let events = [
            Event::Token {
                text: "é".into(),
                token: 42,
                probs: None,
                timings: Some(Timings::default()),
            },
            Event::Error(EngineError::QueueFull { max: 3 }),
            Event::Error(EngineError::Crashed {
                model: "m".into(),
                reason: "killed by SIGKILL".into(),
            }),
        ];
        for event in events {
            let back = round_trip(&FromWorker::Event {
                id: 1,
                event: event.clone(),
            });
            let FromWorker::Event { event: e, .. } = back else {
                panic!()
            };
            assert_eq!(e, event);
        }
    }

    #[test]
    fn a_cut_stream_is_an_error_and_an_empty_one_the_end() {
        let frame = encode(&ToWorker::Shutdown).unwrap();
        assert!(read::<ToWorker>(&mut &frame[..frame.len() - 1]).is_err());
        assert!(read::<ToWorker>(&mut &[][..]).unwrap().is_none());
        let huge = (u32::MAX).to_le_bytes();
        assert!(read::<ToWorker>(&mut &huge[..]).is_err());
    }
}
