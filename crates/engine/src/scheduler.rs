//! The model host's loop: continuous batching over slots, as llama-server does.
//!
//! Each step builds ONE batch from every busy slot — the next token of each generating slot
//! and prompt chunks of slots still reading their prompt, up to `n_batch` tokens — calls
//! `llama_decode` once, then samples for each slot whose logits were computed. Tasks from
//! handles are taken between steps, so a new request starts at the next step when a slot is
//! free; otherwise it waits in a bounded queue.

use std::collections::VecDeque;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc as std_mpsc};
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use tokio::sync::{mpsc, oneshot};

use crate::embed::{
    EmbedConfig, EmbedRequest, Embedder, Job, JobReply, Normalize, RerankVocab, rerank_tokens,
};
use crate::error::EngineError;
use crate::host::{Shared, Task, TokenPiece};
use crate::infill::{FimTokens, InfillPrompt, format_infill};
use crate::lora::{Adapters, LoraConfig};
use crate::params::{OnContextFull, Pooling};
use crate::request::{
    Event, EventStream, FinishReason, GenerateRequest, Prompt, Timings, TokenProbs, Usage,
};
use crate::slot::{ActiveTask, Phase, Slot, SlotFileInfo, common_prefix};
use crate::stop::{StopMatcher, Utf8Buffer, release_held};

/// A prompt shares enough with a slot's cache to prefer that slot over the least recently
/// used one (llama-server's `--slot-prompt-similarity`, 0.1).
const SLOT_PROMPT_SIMILARITY: f32 = 0.1;

pub(crate) struct HostConfig {
    pub n_ctx_slot: u32,
    pub n_slots: u32,
    pub n_batch: usize,
    pub on_full: OnContextFull,
    pub queue_max: u32,
    pub n_swa: u32,
    pub add_bos: bool,
    pub eog_tokens: Vec<i32>,
    /// The pooling the model declares, and the one embeddings use when not asked for one.
    pub model_pooling: Option<Pooling>,
    pub default_pooling: Pooling,
    /// `tokenizer.chat_template.rerank`, if the model has one.
    pub rerank_template: Option<String>,
}

/// An admitted request waiting for a slot.
struct Pending {
    id: u64,
    tx: mpsc::UnboundedSender<Event>,
    prompt: Vec<LlamaToken>,
    chain: LlamaSampler,
    grammar: Option<LlamaSampler>,
    wants_history: bool,
    max_tokens: Option<u32>,
    n_probs: u32,
    n_keep: u32,
    stop: Vec<String>,
    id_slot: Option<u32>,
    priority: bool,
    cache_prompt: bool,
    /// The request's own LoRA scales; `None`: the global ones when it starts (as
    /// llama-server, which takes them at launch).
    lora: Option<LoraConfig>,
}

impl Pending {
    fn lora<'a>(&'a self, global: &'a LoraConfig) -> &'a LoraConfig {
        self.lora.as_ref().unwrap_or(global)
    }
}

pub(crate) struct Host<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    /// The same context as llama.cpp's pointer, for setting LoRA adapters (`None` only if
    /// it could not be found, which the load refuses when there are adapters).
    ctx_raw: Option<NonNull<llama_cpp_sys_2::llama_context>>,
    adapters: Adapters,
    /// The LoRA scales set on `ctx` now.
    lora_applied: LoraConfig,
    batch: LlamaBatch<'static>,
    cfg: HostConfig,
    shared: Arc<Shared>,
    slots: Vec<Slot>,
    queue: VecDeque<Pending>,
    n_vocab: i32,
    /// Reused candidate buffers for sampling.
    cur: LlamaTokenDataArray,
    single: LlamaTokenDataArray,
    /// Reused buffers for token text.
    piece: Vec<u8>,
    text: String,
    tick: u64,
    next_task_id: u64,
    waiters: Vec<oneshot::Sender<()>>,
    embedder: Embedder<'m>,
}

enum Flow {
    Continue,
    Stop,
}

impl<'m> Host<'m> {
    pub fn new(
        model: &'m LlamaModel,
        ctx: LlamaContext<'m>,
        ctx_raw: Option<NonNull<llama_cpp_sys_2::llama_context>>,
        adapters: Adapters,
        cfg: HostConfig,
        embed: EmbedConfig,
        shared: Arc<Shared>,
    ) -> Self {
        let n_vocab = model.n_vocab();
        let batch = LlamaBatch::new(cfg.n_batch, 1);
        let slots = (0..cfg.n_slots)
            .map(|id| Slot {
                id,
                cache: Vec::new(),
                cache_lora: adapters.global().clone(),
                last_used: 0,
                waited: 0,
                task: None,
            })
            .collect();
        Host {
            model,
            ctx,
            ctx_raw,
            lora_applied: adapters.global().clone(),
            adapters,
            batch,
            cfg,
            shared,
            slots,
            queue: VecDeque::new(),
            n_vocab,
            cur: LlamaTokenDataArray::new(Vec::with_capacity(n_vocab.max(0) as usize), false),
            single: LlamaTokenDataArray::new(Vec::with_capacity(1), false),
            piece: Vec::with_capacity(64),
            text: String::with_capacity(64),
            tick: 0,
            next_task_id: 1,
            waiters: Vec::new(),
            embedder: Embedder::new(model, embed),
        }
    }

    /// Serve until shutdown or until every handle is gone. Returns the shutdown waiters, to
    /// be told once the model is freed.
    pub fn run(mut self, rx: std_mpsc::Receiver<Task>) -> Vec<oneshot::Sender<()>> {
        'outer: loop {
            if self.is_idle() {
                match rx.recv() {
                    Ok(task) => {
                        if let Flow::Stop = self.handle(task) {
                            break 'outer;
                        }
                    }
                    Err(_) => break 'outer,
                }
            }
            loop {
                match rx.try_recv() {
                    Ok(task) => {
                        if let Flow::Stop = self.handle(task) {
                            break 'outer;
                        }
                    }
                    Err(std_mpsc::TryRecvError::Empty) => break,
                    Err(std_mpsc::TryRecvError::Disconnected) => break 'outer,
                }
            }
            self.schedule_queue();
            self.step();
            // One embedding batch between two generation steps.
            self.embedder.step(&self.adapters);
            self.publish();
        }
        self.fail_all(EngineError::Shutdown);
        self.publish();
        std::mem::take(&mut self.waiters)
    }

    fn is_idle(&self) -> bool {
        self.queue.is_empty()
            && self.slots.iter().all(|s| s.task.is_none())
            && self.embedder.is_idle()
    }

    fn publish(&self) {
        self.shared
            .queue_len
            .store(self.queue.len(), Ordering::Relaxed);
        let busy = self.slots.iter().filter(|s| s.task.is_some()).count();
        self.shared.busy_slots.store(busy, Ordering::Relaxed);
    }

    fn fail_all(&mut self, err: EngineError) {
        self.embedder.fail_all(&err);
        for p in self.queue.drain(..) {
            let _ = p.tx.send(Event::Error(err.clone()));
        }
        for s in &mut self.slots {
            if let Some(t) = s.task.take() {
                let _ = t.tx.send(Event::Error(err.clone()));
            }
        }
    }

    // ---------------------------------------------------------------------------------
    // Tasks

    fn handle(&mut self, task: Task) -> Flow {
        match task {
            Task::Generate { req, reply } => self.admit(*req, reply),
            Task::Tokenize {
                text,
                add_special,
                parse_special,
                reply,
            } => {
                let toks = self.tokenize(&text, add_special, parse_special);
                let _ = reply.send(Ok(toks.into_iter().map(|t| t.0).collect()));
            }
            Task::Detokenize { tokens, reply } => {
                let r = self.check_tokens(&tokens, "tokens").map(|toks| {
                    let bytes = self.model.vocab().detokenize(&toks, false, false);
                    String::from_utf8_lossy(&bytes).into_owned()
                });
                let _ = reply.send(r);
            }
            Task::TokenPieces { tokens, reply } => {
                let r = self.check_tokens(&tokens, "tokens").map(|toks| {
                    let vocab = self.model.vocab();
                    toks.iter()
                        .map(|&t| {
                            let bytes = vocab.token_to_piece(t, true, None);
                            TokenPiece {
                                id: t.0,
                                piece: String::from_utf8_lossy(&bytes).into_owned(),
                                bytes,
                            }
                        })
                        .collect()
                });
                let _ = reply.send(r);
            }
            Task::Slots { reply } => {
                let n_ctx = self.cfg.n_ctx_slot;
                let _ = reply.send(Ok(self.slots.iter().map(|s| s.info(n_ctx)).collect()));
            }
            Task::LoraAdapters { reply } => {
                let _ = reply.send(Ok(self.adapters.infos()));
            }
            Task::SetLoraScales { scales, reply } => {
                let _ = reply.send(self.adapters.set_global(&scales));
            }
            Task::Embed { req, reply } => match self.embed_job(req) {
                Ok((pooling, normalize, inputs)) => {
                    self.embedder.push(Job::new(
                        pooling,
                        normalize,
                        inputs,
                        JobReply::Embed(reply),
                    ));
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Task::Rerank {
                query,
                documents,
                reply,
            } => match self.rerank_job(&query, &documents) {
                Ok(inputs) => {
                    self.embedder.push(Job::new(
                        Pooling::Rank,
                        Normalize::None,
                        inputs,
                        JobReply::Rerank(reply),
                    ));
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Task::SaveSlot { id, path, reply } => {
                let _ = reply.send(self.save_slot(id, &path));
            }
            Task::RestoreSlot { id, path, reply } => {
                let _ = reply.send(self.restore_slot(id, &path));
            }
            Task::EraseSlot { id, reply } => {
                let r = self.idle_slot(id).map(|i| {
                    let n = self.slots[i].cache.len() as u32;
                    self.clear_seq(i);
                    n
                });
                let _ = reply.send(r);
            }
            Task::Shutdown { done } => {
                self.waiters.push(done);
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn tokenize(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<LlamaToken> {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), add_special, parse_special)
    }

    fn check_tokens(&self, tokens: &[i32], field: &str) -> Result<Vec<LlamaToken>, EngineError> {
        if let Some(&bad) = tokens.iter().find(|&&t| t < 0 || t >= self.n_vocab) {
            return Err(EngineError::invalid(
                field,
                format!(
                    "token id {bad} is outside the vocabulary (0..{})",
                    self.n_vocab
                ),
            ));
        }
        Ok(tokens.iter().map(|&t| LlamaToken(t)).collect())
    }

    fn admit(
        &mut self,
        req: GenerateRequest,
        reply: oneshot::Sender<Result<EventStream, EngineError>>,
    ) {
        match self.prepare(req) {
            Err(e) => {
                let _ = reply.send(Err(e));
            }
            Ok(pending) => {
                let (tx, rx) = mpsc::unbounded_channel();
                let id = self.next_task_id;
                self.next_task_id += 1;
                let pending = Pending { id, tx, ..pending };
                let lora = pending.lora(self.adapters.global());
                let free = self.pick_slot(&pending.prompt, lora, pending.id_slot);
                if free.is_none() && self.queue.len() >= self.cfg.queue_max as usize {
                    let _ = reply.send(Err(EngineError::QueueFull {
                        max: self.cfg.queue_max,
                    }));
                    return;
                }
                let stream = EventStream {
                    rx,
                    task_id: id,
                    finished: false,
                };
                // Place the request before replying, so that `queue_len` already counts it
                // when the caller gets its stream. If the caller is gone, the closed channel
                // frees the slot (or queue place) at the next step.
                match free {
                    Some(i) => self.launch(i, pending),
                    None if pending.priority => self.queue.push_front(pending),
                    None => self.queue.push_back(pending),
                }
                self.publish();
                let _ = reply.send(Ok(stream));
            }
        }
    }

    /// Everything that can fail about a request, before it touches a slot.
    fn prepare(&mut self, req: GenerateRequest) -> Result<Pending, EngineError> {
        req.validate()?;
        let prompt = match &req.prompt {
            Prompt::Text {
                text,
                add_special,
                parse_special,
            } => self.tokenize(text, *add_special, *parse_special),
            Prompt::Tokens(t) => self.check_tokens(t, "prompt")?,
            Prompt::Infill(p) => self.infill_tokens(p, req.max_tokens)?,
        };
        if prompt.is_empty() {
            return Err(EngineError::invalid("prompt", "the prompt is empty"));
        }
        if prompt.len() >= self.cfg.n_ctx_slot as usize {
            return Err(EngineError::PromptTooLong {
                n_prompt: u32::try_from(prompt.len()).unwrap_or(u32::MAX),
                n_ctx: self.cfg.n_ctx_slot,
            });
        }
        if let Some(id) = req.id_slot
            && id >= self.cfg.n_slots
        {
            return Err(EngineError::invalid(
                "id_slot",
                format!(
                    "there are {} slots (0..{})",
                    self.cfg.n_slots, self.cfg.n_slots
                ),
            ));
        }
        let grammar = match &req.grammar {
            Some(g) => Some(g.build(self.model)?),
            None => None,
        };
        // ignore_eos bans end-of-generation tokens; a grammar must be able to end, so it wins.
        let banned: &[i32] = if req.ignore_eos && grammar.is_none() {
            &self.cfg.eog_tokens
        } else {
            &[]
        };
        let chain = req.sampling.build_chain(self.model, self.n_vocab, banned)?;
        let lora = self.adapters.request_config(req.lora.as_deref())?;
        Ok(Pending {
            lora,
            id: 0,
            tx: mpsc::unbounded_channel().0,
            wants_history: req.sampling.wants_history(),
            prompt,
            chain,
            grammar,
            max_tokens: req.max_tokens,
            n_probs: req.n_probs,
            n_keep: req.n_keep,
            stop: req.stop,
            id_slot: req.id_slot,
            priority: req.priority,
            cache_prompt: req.cache_prompt,
        })
    }

    /// Tokenize and check an embed request; make sure its context exists.
    fn embed_job(
        &mut self,
        req: EmbedRequest,
    ) -> Result<(Pooling, Normalize, Vec<Vec<LlamaToken>>), EngineError> {
        req.validate()?;
        let pooling = req.pooling.unwrap_or(self.cfg.default_pooling);
        if pooling == Pooling::Rank && self.cfg.model_pooling != Some(Pooling::Rank) {
            return Err(crate::embed::cannot_rerank(self.cfg.model_pooling));
        }
        let mut inputs = Vec::with_capacity(req.inputs.len());
        for (i, p) in req.inputs.iter().enumerate() {
            let toks = match p {
                Prompt::Text {
                    text,
                    add_special,
                    parse_special,
                } => self.tokenize(text, *add_special, *parse_special),
                Prompt::Tokens(t) => self.check_tokens(t, "inputs")?,
                Prompt::Infill(_) => {
                    return Err(EngineError::invalid(
                        "inputs",
                        format!("input {i} is an infill prompt, which cannot be embedded"),
                    ));
                }
            };
            if toks.is_empty() {
                return Err(EngineError::invalid(
                    "inputs",
                    format!("input {i} is empty"),
                ));
            }
            self.check_embed_len(toks.len())?;
            inputs.push(toks);
        }
        self.embedder.ensure_ctx(pooling)?;
        Ok((pooling, req.normalize, inputs))
    }

    /// One query-document input per document, as llama-server builds them.
    fn rerank_job(
        &mut self,
        query: &str,
        documents: &[String],
    ) -> Result<Vec<Vec<LlamaToken>>, EngineError> {
        if self.cfg.model_pooling != Some(Pooling::Rank) {
            return Err(crate::embed::cannot_rerank(self.cfg.model_pooling));
        }
        if documents.is_empty() {
            return Err(EngineError::invalid(
                "documents",
                "at least one document is needed",
            ));
        }
        let vocab = self.model.vocab();
        let tok = |t: LlamaToken| (t.0 >= 0 && t.0 < self.n_vocab).then_some(t.0);
        let v = RerankVocab {
            bos: tok(vocab.bos()),
            eos: tok(vocab.eos()),
            sep: tok(vocab.sep()),
            add_bos: vocab.should_add_bos(),
            add_eos: vocab.should_add_eos(),
            add_sep: vocab.should_add_sep(),
        };
        let mut inputs = Vec::with_capacity(documents.len());
        for doc in documents {
            let toks = rerank_tokens(
                self.cfg.rerank_template.as_deref(),
                query,
                doc,
                &v,
                |text, parse_special| {
                    self.tokenize(text, false, parse_special)
                        .into_iter()
                        .map(|t| t.0)
                        .collect()
                },
            );
            if toks.is_empty() {
                return Err(EngineError::invalid(
                    "documents",
                    "the query and document are empty",
                ));
            }
            self.check_embed_len(toks.len())?;
            inputs.push(toks.into_iter().map(LlamaToken).collect());
        }
        self.embedder.ensure_ctx(Pooling::Rank)?;
        Ok(inputs)
    }

    /// An infill prompt's tokens, as llama-server's `/infill` builds them.
    fn infill_tokens(
        &self,
        p: &InfillPrompt,
        max_tokens: Option<u32>,
    ) -> Result<Vec<LlamaToken>, EngineError> {
        let vocab = self.model.vocab();
        let tok = |t: LlamaToken| (t.0 >= 0 && t.0 < self.n_vocab).then_some(t.0);
        let fim = FimTokens::new(
            tok(vocab.fim_pre()),
            tok(vocab.fim_suf()),
            tok(vocab.fim_mid()),
            tok(vocab.fim_rep()),
            tok(vocab.fim_sep()),
            if vocab.should_add_bos() {
                tok(vocab.bos())
            } else {
                None
            },
        )?;
        let toks = format_infill(
            p,
            &fim,
            self.cfg.n_batch,
            max_tokens,
            self.cfg.n_ctx_slot as usize,
            |text, parse_special| {
                self.tokenize(text, false, parse_special)
                    .into_iter()
                    .map(|t| t.0)
                    .collect()
            },
        );
        Ok(toks.into_iter().map(LlamaToken).collect())
    }

    fn check_embed_len(&self, n: usize) -> Result<(), EngineError> {
        let n_ctx = self.embedder.n_ctx();
        if n > n_ctx as usize {
            return Err(EngineError::PromptTooLong {
                n_prompt: u32::try_from(n).unwrap_or(u32::MAX),
                n_ctx,
            });
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------
    // Slots

    /// The idle slot for this prompt: the requested one, else the one whose cache shares the
    /// longest prefix (if similar enough; only caches computed under the same LoRA scales
    /// count), else the least recently used.
    fn pick_slot(
        &self,
        prompt: &[LlamaToken],
        lora: &LoraConfig,
        id_slot: Option<u32>,
    ) -> Option<usize> {
        if let Some(id) = id_slot {
            let i = id as usize;
            return self.slots[i].task.is_none().then_some(i);
        }
        let mut best: Option<(usize, usize)> = None;
        for (i, s) in self.slots.iter().enumerate() {
            if s.task.is_some() {
                continue;
            }
            let lcp = if s.cache_lora[..] == lora[..] {
                common_prefix(&s.cache, prompt)
            } else {
                0
            };
            if best.is_none_or(|(_, b)| lcp > b) {
                best = Some((i, lcp));
            }
        }
        if let Some((i, lcp)) = best
            && lcp > 0
            && lcp as f32 / prompt.len() as f32 > SLOT_PROMPT_SIMILARITY
        {
            return Some(i);
        }
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.task.is_none())
            .min_by_key(|(_, s)| s.last_used)
            .map(|(i, _)| i)
    }

    fn schedule_queue(&mut self) {
        // Drop requests whose caller went away while waiting.
        self.queue.retain(|p| !p.tx.is_closed());
        let mut i = 0;
        while i < self.queue.len() {
            if self.slots.iter().all(|s| s.task.is_some()) {
                break;
            }
            let p = &self.queue[i];
            match self.pick_slot(&p.prompt, p.lora(self.adapters.global()), p.id_slot) {
                Some(slot) => {
                    let p = self.queue.remove(i).expect("index checked");
                    self.launch(slot, p);
                }
                None => i += 1,
            }
        }
    }

    /// Start `p` in slot `i`: keep the KV of the common prefix, drop the rest.
    fn launch(&mut self, i: usize, p: Pending) {
        self.tick += 1;
        let n_prompt = p.prompt.len();
        let slot_cache = &self.slots[i].cache;
        // KV computed under other LoRA scales is not this request's.
        let lora = p.lora(self.adapters.global()).clone();
        let same_lora = self.slots[i].cache_lora[..] == lora[..];
        let mut n_past = if p.cache_prompt && same_lora {
            common_prefix(slot_cache, &p.prompt)
        } else {
            0
        };
        // At least one token is evaluated, so that there are logits to sample from.
        n_past = n_past.min(n_prompt - 1);
        let seq = self.slots[i].seq();
        if n_past < self.slots[i].cache.len() {
            let removed = self
                .ctx
                .clear_kv_cache_seq(Some(seq as u32), Some(n_past as u32), None)
                .unwrap_or(false);
            if !removed {
                // Recurrent/hybrid memory cannot drop a tail: start over.
                n_past = 0;
            }
        }
        if n_past > 0 {
            // With a sliding window (or a cache that lost its start), the cells the next
            // tokens attend to may be gone: then re-read the whole prompt.
            let pos_min = self.ctx.kv_cache_seq_pos_min(seq);
            let n_swa = self.cfg.n_swa as i64;
            let missing = pos_min < 0
                || (pos_min > 0 && (n_swa == 0 || i64::from(pos_min) > n_past as i64 - n_swa));
            if missing {
                n_past = 0;
            }
        }
        if n_past == 0 {
            let _ = self.ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
        }
        let slot = &mut self.slots[i];
        slot.cache.truncate(n_past);
        slot.cache_lora = lora.clone();
        slot.last_used = self.tick;
        slot.waited = 0;
        let mut chain = p.chain;
        if p.wants_history {
            chain.accept_many(&p.prompt);
        }
        slot.task = Some(ActiveTask {
            id: p.id,
            tx: p.tx,
            n_prompt_done: n_past,
            phase: Phase::Prompt,
            next_token: None,
            i_batch: -1,
            in_batch: false,
            chain,
            grammar: p.grammar,
            max_tokens: p.max_tokens,
            n_decoded: 0,
            n_probs: p.n_probs,
            n_keep: p.n_keep,
            utf8: Utf8Buffer::new(),
            stop: StopMatcher::new(p.stop),
            cache_n: n_past as u32,
            prompt_n: (n_prompt - n_past) as u32,
            t_start: Instant::now(),
            t_prompt_done: None,
            prompt: p.prompt,
            lora,
        });
    }

    fn clear_seq(&mut self, i: usize) {
        let seq = self.slots[i].seq();
        let _ = self.ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
        self.slots[i].cache.clear();
    }

    fn idle_slot(&self, id: u32) -> Result<usize, EngineError> {
        let i = id as usize;
        match self.slots.get(i) {
            None => Err(EngineError::invalid(
                "id_slot",
                format!("there are {} slots", self.slots.len()),
            )),
            Some(s) if s.task.is_some() => Err(EngineError::SlotBusy { id }),
            Some(_) => Ok(i),
        }
    }

    fn save_slot(&mut self, id: u32, path: &Path) -> Result<SlotFileInfo, EngineError> {
        let i = self.idle_slot(id)?;
        let err = |reason: String| EngineError::SlotFile {
            path: path.to_path_buf(),
            reason,
        };
        let tmp = path.with_extension("tmp-save");
        let slot = &self.slots[i];
        let n_bytes = self
            .ctx
            .state_seq_save_file(&tmp, slot.seq(), &slot.cache)
            .map_err(|e| err(e.to_string()))?;
        let finish = || -> std::io::Result<()> {
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        if let Err(e) = finish() {
            let _ = std::fs::remove_file(&tmp);
            return Err(err(e.to_string()));
        }
        Ok(SlotFileInfo {
            id,
            n_tokens: slot.cache.len() as u32,
            n_bytes: n_bytes as u64,
        })
    }

    fn restore_slot(&mut self, id: u32, path: &Path) -> Result<SlotFileInfo, EngineError> {
        let i = self.idle_slot(id)?;
        if !path.is_file() {
            return Err(EngineError::SlotFile {
                path: path.to_path_buf(),
                reason: "no such file".into(),
            });
        }
        self.clear_seq(i);
        let seq = self.slots[i].seq();
        match self
            .ctx
            .state_seq_load_file(path, seq, self.cfg.n_ctx_slot as usize)
        {
            Ok((tokens, n_bytes)) => {
                if tokens.iter().any(|t| t.0 < 0 || t.0 >= self.n_vocab) {
                    self.clear_seq(i);
                    return Err(EngineError::SlotFile {
                        path: path.to_path_buf(),
                        reason: "the file holds tokens outside this model's vocabulary".into(),
                    });
                }
                let n_tokens = tokens.len() as u32;
                self.slots[i].cache = tokens;
                // Slot files do not record LoRA scales: count the cache as computed under
                // the global ones.
                self.slots[i].cache_lora = self.adapters.global().clone();
                Ok(SlotFileInfo {
                    id,
                    n_tokens,
                    n_bytes: n_bytes as u64,
                })
            }
            Err(e) => {
                self.clear_seq(i);
                Err(EngineError::SlotFile {
                    path: path.to_path_buf(),
                    reason: format!("{e} (not a slot file of this model and context size?)"),
                })
            }
        }
    }

    // ---------------------------------------------------------------------------------
    // One scheduler step

    fn step(&mut self) {
        // Requests whose receiver is gone are cancelled: free their slots.
        for s in &mut self.slots {
            if s.task.as_ref().is_some_and(|t| t.tx.is_closed()) {
                s.task = None;
                self.shared.requests_done.fetch_add(1, Ordering::Relaxed);
            }
        }

        self.batch.clear();
        let mut n_tokens: usize = 0;
        let mut n_slots_in_batch = 0u64;
        let n_batch = self.cfg.n_batch;
        for s in &mut self.slots {
            if let Some(t) = s.task.as_mut() {
                t.i_batch = -1;
                t.in_batch = false;
            }
        }
        let Some(group) = self.lora_group() else {
            return;
        };

        // 1. One token for each generating slot.
        for s in &mut self.slots {
            let seq = s.seq();
            let Some(t) = s.task.as_mut() else { continue };
            if t.phase != Phase::Generate || t.lora[..] != group[..] {
                continue;
            }
            let Some(tok) = t.next_token.take() else {
                continue;
            };
            let pos = s.cache.len() as i32;
            if self.batch.add(tok, pos, &[seq], true).is_err() {
                t.next_token = Some(tok); // no room (cannot happen: n_batch >= n_slots)
                continue;
            }
            s.cache.push(tok);
            t.i_batch = n_tokens as i32;
            t.in_batch = true;
            n_tokens += 1;
            n_slots_in_batch += 1;
        }

        // 2. Prompt chunks, while the batch has room.
        for s in &mut self.slots {
            if n_tokens >= n_batch {
                break;
            }
            let seq = s.seq();
            let Some(t) = s.task.as_mut() else { continue };
            if t.phase != Phase::Prompt || t.lora[..] != group[..] {
                continue;
            }
            let remaining = t.prompt.len() - t.n_prompt_done;
            let take = remaining.min(n_batch - n_tokens);
            let last = t.prompt.len() - 1;
            for k in t.n_prompt_done..t.n_prompt_done + take {
                let pos = s.cache.len() as i32;
                let tok = t.prompt[k];
                if self.batch.add(tok, pos, &[seq], k == last).is_err() {
                    break;
                }
                s.cache.push(tok);
                n_tokens += 1;
            }
            t.n_prompt_done += take;
            t.in_batch = take > 0;
            if t.n_prompt_done == t.prompt.len() {
                t.i_batch = n_tokens as i32 - 1;
            }
            n_slots_in_batch += 1;
        }

        if n_tokens == 0 {
            return;
        }

        let decoded = self.set_lora(&group).and_then(|()| {
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| EngineError::Decode(e.to_string()))
        });
        if let Err(e) = decoded {
            tracing::error!(error = %e, n_tokens, "llama_decode failed");
            // Fail every slot that was in this batch and drop its (now unknown) KV; slots
            // still waiting for room in the batch are untouched.
            let failed: Vec<usize> = self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.task.as_ref().is_some_and(|t| t.in_batch))
                .map(|(i, _)| i)
                .collect();
            for i in failed {
                if let Some(t) = self.slots[i].task.take() {
                    self.shared.requests_done.fetch_add(1, Ordering::Relaxed);
                    let _ = t.tx.send(Event::Error(e.clone()));
                }
                self.clear_seq(i);
            }
            return;
        }
        let sh = &self.shared;
        sh.decode_calls.fetch_add(1, Ordering::Relaxed);
        sh.decoded_tokens
            .fetch_add(n_tokens as u64, Ordering::Relaxed);
        sh.max_batch_tokens
            .fetch_max(n_tokens as u64, Ordering::Relaxed);
        sh.max_batch_slots
            .fetch_max(n_slots_in_batch, Ordering::Relaxed);

        // 3. Sample for every slot whose logits were computed.
        for i in 0..self.slots.len() {
            let Some(t) = self.slots[i].task.as_ref() else {
                continue;
            };
            if t.i_batch < 0 {
                continue;
            }
            self.sample_slot(i);
        }
    }

    /// The LoRA configuration this step decodes: that of the slot that has waited longest
    /// for its configuration's turn (ties: the one set now, then the lowest slot), so that
    /// groups of slots with different scales alternate and none starves. Slots with work
    /// in another configuration wait one more step. `None` when no slot has work.
    fn lora_group(&mut self) -> Option<LoraConfig> {
        let mut best: Option<(usize, (u64, bool))> = None;
        for (i, s) in self.slots.iter().enumerate() {
            let Some(t) = s.task.as_ref().filter(|t| t.has_work()) else {
                continue;
            };
            let key = (s.waited, t.lora[..] == self.lora_applied[..]);
            if best.is_none_or(|(_, b)| key > b) {
                best = Some((i, key));
            }
        }
        let (i, _) = best?;
        let group = self.slots[i].task.as_ref()?.lora.clone();
        for s in &mut self.slots {
            if let Some(t) = s.task.as_ref().filter(|t| t.has_work()) {
                if t.lora[..] == group[..] {
                    s.waited = 0;
                } else {
                    s.waited += 1;
                }
            }
        }
        Some(group)
    }

    /// Set these LoRA scales on the slots' context if they are not the ones set now.
    fn set_lora(&mut self, cfg: &LoraConfig) -> Result<(), EngineError> {
        if cfg[..] == self.lora_applied[..] {
            return Ok(());
        }
        let Some(raw) = self.ctx_raw else {
            return Err(EngineError::Decode(
                "cannot reach the llama.cpp context to set LoRA adapters".into(),
            ));
        };
        self.adapters.apply(raw, cfg)?;
        self.lora_applied = cfg.clone();
        Ok(())
    }

    fn sample_slot(&mut self, i: usize) {
        let now = Instant::now();
        let slot = &mut self.slots[i];
        let t = slot.task.as_mut().expect("checked by caller");
        let idx = t.i_batch;
        t.i_batch = -1;
        if t.phase == Phase::Prompt {
            t.phase = Phase::Generate;
            t.t_prompt_done = Some(now);
        }
        if t.max_tokens == Some(0) {
            self.finish(i, FinishReason::Length);
            return;
        }

        let token = match sample(&self.ctx, t, idx, &mut self.cur, &mut self.single) {
            Ok(tok) => tok,
            Err(e) => {
                self.shared.requests_done.fetch_add(1, Ordering::Relaxed);
                let _ = t.tx.send(Event::Error(e));
                slot.task = None;
                return;
            }
        };
        t.n_decoded += 1;
        let probs =
            (t.n_probs > 0).then(|| token_probs(&self.ctx, self.model, idx, token, t.n_probs));

        let model: &'m LlamaModel = self.model;
        let vocab = model.vocab();
        let is_eog = vocab.is_eog(token);
        self.text.clear();
        if is_eog {
            // End of generation: release held-back text, carried by this (otherwise unsent)
            // token.
            let mut tail = String::new();
            release_held(&mut t.utf8, &mut t.stop, &mut tail);
            if !tail.is_empty() {
                let _ = t.tx.send(Event::Token {
                    text: tail,
                    token: token.0,
                    probs,
                });
            }
            self.finish(i, FinishReason::Stop);
            return;
        }

        self.piece.clear();
        vocab.token_to_piece_into(token, &mut self.piece, false, None);
        let mut decoded = std::mem::take(&mut self.text);
        t.utf8.push(&self.piece, &mut decoded);
        let mut out = String::with_capacity(decoded.len());
        let matched = t.stop.push(&decoded, &mut out);
        decoded.clear();
        self.text = decoded;

        if let Some(stop) = matched {
            let _ = t.tx.send(Event::Token {
                text: out,
                token: token.0,
                probs,
            });
            self.finish(i, FinishReason::StopString(stop));
            return;
        }
        let limit = t.max_tokens.is_some_and(|m| t.n_decoded >= m);
        let full = slot.cache.len() >= self.cfg.n_ctx_slot as usize;
        if limit || (full && self.cfg.on_full == OnContextFull::Stop) {
            release_held(&mut t.utf8, &mut t.stop, &mut out);
            let _ = t.tx.send(Event::Token {
                text: out,
                token: token.0,
                probs,
            });
            self.finish(i, FinishReason::Length);
            return;
        }
        if t.tx
            .send(Event::Token {
                text: out,
                token: token.0,
                probs,
            })
            .is_err()
        {
            slot.task = None; // cancelled
            self.shared.requests_done.fetch_add(1, Ordering::Relaxed);
            return;
        }
        t.next_token = Some(token);
        if full && !self.context_shift(i) {
            self.finish(i, FinishReason::Length);
        }
    }

    /// Drop the older half of the slot's context after `n_keep` (+ BOS), like llama-server's
    /// context shift. False if nothing can be dropped.
    fn context_shift(&mut self, i: usize) -> bool {
        let seq = self.slots[i].seq();
        let n_past = self.slots[i].cache.len();
        let Some(t) = self.slots[i].task.as_ref() else {
            return false;
        };
        let n_keep =
            (t.n_keep as usize + usize::from(self.cfg.add_bos)).min(n_past.saturating_sub(1));
        let n_discard = (n_past - n_keep) / 2;
        if n_discard == 0 {
            return false;
        }
        let (p0, p1) = (n_keep as u32, (n_keep + n_discard) as u32);
        if self.ctx.kv_cache_seq_rm(seq, Some(p0), Some(p1)).is_err() {
            return false;
        }
        let _ = self
            .ctx
            .kv_cache_seq_add(seq, Some(p1), None, -(n_discard as i32));
        self.slots[i].cache.drain(n_keep..n_keep + n_discard);
        tracing::debug!(slot = i, n_keep, n_discard, "context shift");
        true
    }

    fn finish(&mut self, i: usize, reason: FinishReason) {
        let slot = &mut self.slots[i];
        let Some(t) = slot.task.take() else { return };
        let now = Instant::now();
        let t_prompt = t.t_prompt_done.unwrap_or(now);
        let prompt_ms = (t_prompt - t.t_start).as_secs_f64() * 1e3;
        let predicted_ms = (now - t_prompt).as_secs_f64() * 1e3;
        let timings = Timings::new(t.cache_n, t.prompt_n, prompt_ms, t.n_decoded, predicted_ms);
        // Count before telling the caller, so that stats agree with what it has seen.
        self.shared.requests_done.fetch_add(1, Ordering::Relaxed);
        let _ = t.tx.send(Event::Done {
            finish_reason: reason,
            usage: Usage {
                prompt_tokens: t.prompt.len() as u32,
                completion_tokens: t.n_decoded,
            },
            timings,
            slot_id: slot.id,
        });
    }
}

fn fill(cur: &mut LlamaTokenDataArray, logits: &[f32]) {
    cur.data.clear();
    cur.data.extend(
        logits
            .iter()
            .enumerate()
            .map(|(i, &l)| LlamaTokenData::new(LlamaToken(i as i32), l, 0.0)),
    );
    cur.selected = None;
    cur.sorted = false;
}

fn selected(cur: &LlamaTokenDataArray) -> Option<LlamaToken> {
    let d = cur.data.get(cur.selected?)?;
    (d.logit() > f32::NEG_INFINITY || d.p() > 0.0).then_some(d.id())
}

/// Sample one token from the logits at batch index `idx`, as llama-server does: the chain
/// picks a token; with a grammar, the token is checked against it, and only if rejected is
/// the grammar applied to every candidate and the chain run again.
fn sample(
    ctx: &LlamaContext<'_>,
    t: &mut ActiveTask,
    idx: i32,
    cur: &mut LlamaTokenDataArray,
    single: &mut LlamaTokenDataArray,
) -> Result<LlamaToken, EngineError> {
    let logits = ctx.get_logits_ith(idx);
    fill(cur, logits);
    cur.apply_sampler(&mut t.chain);
    let mut token = cur
        .selected_token()
        .ok_or_else(|| EngineError::Decode("the sampler chose no token".into()))?;
    if let Some(g) = t.grammar.as_mut() {
        single.data.clear();
        single.data.push(LlamaTokenData::new(token, 1.0, 0.0));
        single.selected = None;
        single.sorted = false;
        single.apply_sampler(g);
        if single.data[0].logit() == f32::NEG_INFINITY {
            fill(cur, logits);
            cur.apply_sampler(g);
            if cur.data.iter().all(|d| d.logit() == f32::NEG_INFINITY) {
                return Err(EngineError::InvalidGrammar(
                    "the grammar allows no token here".into(),
                ));
            }
            cur.apply_sampler(&mut t.chain);
            token = selected(cur).ok_or_else(|| {
                EngineError::InvalidGrammar("no token satisfies the grammar and the sampler".into())
            })?;
        }
        g.try_accept(token)
            .map_err(|e| EngineError::InvalidGrammar(format!("grammar rejected the token: {e}")))?;
    }
    t.chain.accept(token);
    Ok(token)
}

/// Log-probabilities from the raw logits (softmax over the whole vocabulary, as
/// llama-server reports `n_probs`).
fn token_probs(
    ctx: &LlamaContext<'_>,
    model: &LlamaModel,
    idx: i32,
    token: LlamaToken,
    n: u32,
) -> TokenProbs {
    let logits = ctx.get_logits_ith(idx);
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    let lse = max + sum.ln() as f32;
    let n = n as usize;
    let mut top: Vec<(f32, i32)> = Vec::with_capacity(n + 1);
    for (i, &l) in logits.iter().enumerate() {
        if top.len() < n || l > top[top.len() - 1].0 {
            let pos = top.partition_point(|&(v, _)| v >= l);
            top.insert(pos, (l, i as i32));
            top.truncate(n);
        }
    }
    let vocab = model.vocab();
    TokenProbs {
        logprob: logits
            .get(token.0 as usize)
            .map_or(f32::NEG_INFINITY, |&l| l - lse),
        top: top
            .into_iter()
            .map(|(l, id)| {
                let bytes = vocab.token_to_piece(LlamaToken(id), true, None);
                (id, String::from_utf8_lossy(&bytes).into_owned(), l - lse)
            })
            .collect(),
    }
}
