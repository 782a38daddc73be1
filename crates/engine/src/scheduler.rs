//! The model host's loop: continuous batching over slots, as llama-server does.
//!
//! Each step builds ONE batch from every busy slot — the next token of each generating slot
//! and prompt chunks of slots still reading their prompt, up to `n_batch` tokens, and no
//! more than `prefill_chunk` prompt tokens while slots generate (chunked prefill) — calls
//! `llama_decode` once, then samples for each slot whose logits were computed. Tasks from
//! handles are taken between steps, so a new request starts at the next step when a slot is
//! free; otherwise it waits in a bounded queue.

mod output;
mod placement;
mod prompt_cache;
mod sample;
mod slot_file;

use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc as std_mpsc};
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use tokio::sync::{mpsc, oneshot};

use crate::admission::Ready;
use crate::embed::{EmbedConfig, Embedder, Job, JobReply, Normalize};
use crate::error::EngineError;
use crate::host::{Shared, Task};
use crate::lora::{Adapters, LoraConfig};
use crate::params::{OnContextFull, Pooling};
use crate::request::{Event, EventStream, Progress};
use crate::slot::{ActiveTask, Phase, Slot};
use crate::stop::{StopMatcher, Utf8Buffer};

use placement::{SlotCandidate, Waiting, common_prefix, lora_turn, pick_slot, prompt_budget};
use prompt_cache::{CacheLimit, PromptCache};

pub(crate) struct HostConfig {
    pub n_ctx_slot: u32,
    pub n_slots: u32,
    pub n_batch: usize,
    /// Most prompt tokens in a step while other slots generate (chunked prefill).
    pub prefill_chunk: usize,
    pub on_full: OnContextFull,
    pub queue_max: u32,
    pub n_swa: u32,
    pub add_bos: bool,
    /// With unified KV (`kv_unified`), the cells all slots share; `None`: each slot has
    /// `n_ctx_slot` cells of its own.
    pub kv_pool: Option<usize>,
    /// The host-RAM prompt cache's size (llama-server's `--cache-ram`: MiB, -1 = no
    /// limit, 0 = off).
    pub cache_ram_mib: i64,
    /// Save idle slots to the prompt cache when a task starts (and clear them with
    /// unified KV); needs the cache.
    pub cache_idle_slots: bool,
}

/// An admitted request waiting for a slot.
struct Pending {
    id: u64,
    tx: mpsc::UnboundedSender<Event>,
    req: Ready,
}

impl Pending {
    fn lora<'a>(&'a self, global: &'a LoraConfig) -> &'a LoraConfig {
        self.req.lora.as_ref().unwrap_or(global)
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
    /// Reused buffer for a token's bytes.
    piece: Vec<u8>,
    tick: u64,
    next_task_id: u64,
    waiters: Vec<oneshot::Sender<()>>,
    embedder: Embedder<'m>,
    /// Benchmarks waiting for the slots to be idle; no new request starts meanwhile.
    benches: Vec<PendingBench>,
    /// Slots' states kept in host RAM (`cache_ram_mib`); `None` when off.
    prompt_cache: Option<PromptCache<llama_cpp_2::SeqState>>,
}

type PendingBench = (
    crate::bench::BenchParams,
    Box<dyn FnMut(crate::bench::BenchProgress) + Send>,
    oneshot::Sender<Result<crate::bench::BenchReport, EngineError>>,
);

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
        let n_ctx_total = cfg
            .kv_pool
            .unwrap_or(cfg.n_ctx_slot as usize * cfg.n_slots as usize);
        let prompt_cache = CacheLimit::from_mib(cfg.cache_ram_mib, n_ctx_total).map(|limit| {
            tracing::debug!(?limit, "prompt cache is on");
            PromptCache::new(limit)
        });
        if cfg.cache_idle_slots {
            if prompt_cache.is_some() {
                // llama-server's log tag, which its test suite looks for.
                tracing::debug!(
                    "idle slots go to the prompt cache when a task starts: \
                     __TEST_TAG_CACHE_IDLE_SLOTS_ENABLED__"
                );
            } else {
                tracing::debug!("cache_idle_slots needs the prompt cache (cache_ram_mib): off");
            }
        }
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
            tick: 0,
            next_task_id: 1,
            waiters: Vec::new(),
            embedder: Embedder::new(model, embed),
            benches: Vec::new(),
            prompt_cache,
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
            if !self.benches.is_empty() && self.slots.iter().all(|s| s.task.is_none()) {
                self.run_benches();
            }
            if self.benches.is_empty() {
                self.schedule_queue();
            }
            self.step();
            // One embedding batch between two generation steps.
            self.embedder.step(&self.adapters);
            self.publish();
        }
        self.fail_all(EngineError::Shutdown);
        self.publish();
        // The counters outlive this load: its cache is freed with it.
        self.prompt_cache = None;
        self.publish_cache();
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
            Task::Embed { job, reply } => match self.embedder.ensure_ctx(job.pooling) {
                Ok(()) => self.embedder.push(Job::new(
                    job.pooling,
                    job.normalize,
                    job.inputs,
                    JobReply::Embed(reply),
                )),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Task::Rerank { inputs, reply } => match self.embedder.ensure_ctx(Pooling::Rank) {
                Ok(()) => self.embedder.push(Job::new(
                    Pooling::Rank,
                    Normalize::None,
                    inputs,
                    JobReply::Rerank(reply),
                )),
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
                let _ = reply.send(self.erase_slot(id));
            }
            Task::Bench {
                params,
                progress,
                reply,
            } => self.benches.push((params, progress, reply)),
            Task::Shutdown { done } => {
                self.waiters.push(done);
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    /// Runs the waiting benchmarks, each on a context of its own (the slots are idle).
    fn run_benches(&mut self) {
        for (params, mut progress, reply) in std::mem::take(&mut self.benches) {
            let _ = reply.send(crate::bench::measure(self.model, &params, &mut *progress));
        }
    }

    /// Place a ready request: in an idle slot, else in the queue if it has room. Only the
    /// host's state is consulted here; everything else was checked by the caller.
    fn admit(&mut self, req: Ready, reply: oneshot::Sender<Result<EventStream, EngineError>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.next_task_id;
        self.next_task_id += 1;
        let logit_bias = req.logit_bias.clone();
        let prompt_tokens = u32::try_from(req.prompt.len()).unwrap_or(u32::MAX);
        let pending = Pending { id, tx, req };
        // A waiting benchmark goes first: new requests queue until it is done.
        let free = if self.benches.is_empty() {
            self.free_slot(&pending)
        } else {
            None
        };
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
            logit_bias,
            prompt_tokens,
            cancel: None,
        };
        // Place the request before replying, so that `queue_len` already counts it when the
        // caller gets its stream. If the caller is gone, the closed channel frees the slot
        // (or queue place) at the next step.
        match free {
            Some(i) => self.launch(i, pending),
            None if pending.req.priority => self.queue.push_front(pending),
            None => self.queue.push_back(pending),
        }
        self.publish();
        let _ = reply.send(Ok(stream));
    }

    // ---------------------------------------------------------------------------------
    // Slots

    /// The idle slot for this request (see [`placement::pick_slot`]).
    fn free_slot(&self, p: &Pending) -> Option<usize> {
        let candidates: Vec<SlotCandidate<'_>> = self
            .slots
            .iter()
            .map(|s| SlotCandidate {
                idle: s.task.is_none(),
                cache: &s.cache,
                cache_lora: &s.cache_lora,
                last_used: s.last_used,
            })
            .collect();
        pick_slot(
            &candidates,
            &p.req.prompt,
            p.lora(self.adapters.global()),
            p.req.id_slot,
        )
    }

    fn schedule_queue(&mut self) {
        // Drop requests whose caller went away while waiting.
        self.queue.retain(|p| !p.tx.is_closed());
        let mut i = 0;
        while i < self.queue.len() {
            if self.slots.iter().all(|s| s.task.is_some()) {
                break;
            }
            match self.free_slot(&self.queue[i]) {
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
        let lora = p.lora(self.adapters.global()).clone();
        let Pending { id, tx, req } = p;
        let n_prompt = req.prompt.len();
        self.update_prompt_cache(i, &req.prompt, &lora, req.cache_prompt);
        let slot_cache = &self.slots[i].cache;
        // KV computed under other LoRA scales is not this request's.
        let same_lora = self.slots[i].cache_lora[..] == lora[..];
        let mut n_past = if req.cache_prompt && same_lora {
            common_prefix(slot_cache, &req.prompt)
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
        slot.task = Some(ActiveTask {
            id,
            tx,
            n_prompt_done: n_past,
            phase: Phase::Prompt,
            next_token: None,
            i_batch: -1,
            in_batch: false,
            chain: req.chain,
            grammar: req.grammar,
            max_tokens: req.max_tokens,
            n_decoded: 0,
            n_probs: req.n_probs,
            post_sampling_probs: req.post_sampling_probs,
            return_progress: req.return_progress,
            timings_per_token: req.timings_per_token,
            n_keep: req.n_keep,
            utf8: Utf8Buffer::new(),
            stop: StopMatcher::new(req.stop),
            cache_n: n_past as u32,
            prompt_n: (n_prompt - n_past) as u32,
            t_start: Instant::now(),
            t_prompt_done: None,
            prompt: req.prompt,
            lora,
            budget: req.budget,
        });
        self.cache_idle_slots();
        // The first report comes before any prompt token is decoded (llama-server's 0 %).
        self.send_progress(i);
    }

    /// Tells slot `i`'s caller how far its prompt is, if it asked (`return_progress`).
    fn send_progress(&self, i: usize) {
        let Some(t) = self.slots[i].task.as_ref().filter(|t| t.return_progress) else {
            return;
        };
        let now = Instant::now();
        let _ = t.tx.send(Event::Progress(Progress {
            total: t.prompt.len() as u32,
            cache: t.cache_n,
            processed: t.n_prompt_done as u32,
            time_ms: (now - t.t_start).as_millis() as u64,
            timings: t.timings(now),
        }));
    }

    /// With unified KV, drops the cached prompts of idle slots, least recently used first,
    /// while the slots' tokens (this step's included) would not fit the shared pool — as
    /// llama-server clears idle slots for a launching one; caches that fit are kept for reuse.
    fn make_room_in_pool(&mut self) {
        let Some(pool) = self.cfg.kv_pool else { return };
        let used = |slots: &[Slot]| slots.iter().map(|s| s.cache.len()).sum::<usize>();
        let idle: Vec<usize> = {
            let mut v: Vec<&Slot> = self
                .slots
                .iter()
                .filter(|s| s.task.is_none() && !s.cache.is_empty())
                .collect();
            v.sort_by_key(|s| s.last_used);
            v.into_iter().map(|s| s.id as usize).collect()
        };
        for i in idle {
            if used(&self.slots) <= pool {
                break;
            }
            tracing::debug!(
                slot = i,
                "unified KV pool full: dropping an idle slot's cache"
            );
            self.clear_seq(i);
        }
    }

    fn clear_seq(&mut self, i: usize) {
        let seq = self.slots[i].seq();
        let _ = self.ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
        self.slots[i].cache.clear();
    }

    // ---------------------------------------------------------------------------------
    // One scheduler step

    fn step(&mut self) {
        // Requests whose receiver is gone are cancelled: free their slots.
        for s in &mut self.slots {
            if s.task.as_ref().is_some_and(|t| t.tx.is_closed()) {
                s.task = None;
                self.shared
                    .counters
                    .requests_done
                    .fetch_add(1, Ordering::Relaxed);
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

        // 2. Prompt chunks, within the step's prompt budget: while slots generate, a long
        //    prompt is read a chunk per step so that their next tokens are not held up.
        let mut budget = prompt_budget(n_batch, n_tokens, self.cfg.prefill_chunk);
        for s in &mut self.slots {
            if budget == 0 {
                break;
            }
            let seq = s.seq();
            let Some(t) = s.task.as_mut() else { continue };
            if t.phase != Phase::Prompt || t.lora[..] != group[..] {
                continue;
            }
            let remaining = t.prompt.len() - t.n_prompt_done;
            let take = remaining.min(budget);
            budget -= take;
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

        self.make_room_in_pool();
        let pool = self.cfg.kv_pool;
        let decoded = self.set_lora(&group).and_then(|()| {
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| match (e, pool) {
                    // The busy slots together outgrew the shared pool: llama-server's words.
                    (llama_cpp_2::DecodeError::NoKvCacheSlot, Some(pool)) => {
                        EngineError::Decode(format!(
                            "context size has been exceeded: the slots together need more \
                             than the {pool} tokens of their shared KV pool (kv_unified; \
                             raise models.ctx_size)"
                        ))
                    }
                    (e, _) => EngineError::Decode(e.to_string()),
                })
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
                    self.shared
                        .counters
                        .requests_done
                        .fetch_add(1, Ordering::Relaxed);
                    let _ = t.tx.send(Event::Error(e.clone()));
                }
                self.clear_seq(i);
            }
            return;
        }
        let sh = &self.shared.counters;
        sh.decode_calls.fetch_add(1, Ordering::Relaxed);
        sh.decoded_tokens
            .fetch_add(n_tokens as u64, Ordering::Relaxed);
        sh.max_batch_tokens
            .fetch_max(n_tokens as u64, Ordering::Relaxed);
        sh.max_batch_slots
            .fetch_max(n_slots_in_batch, Ordering::Relaxed);
        // llama-server's `n_busy_slots` and `n_tokens_max`: every slot with a request counts,
        // whether or not it had a token in this batch.
        let busy = self.slots.iter().filter(|s| s.task.is_some()).count();
        sh.busy_slot_steps.fetch_add(busy as u64, Ordering::Relaxed);
        let longest = self.slots.iter().map(|s| s.cache.len()).max().unwrap_or(0);
        sh.max_seq_tokens
            .fetch_max(longest as u64, Ordering::Relaxed);

        // Progress of the prompts read in this step (the last report has all of it).
        for i in 0..self.slots.len() {
            if self.slots[i]
                .task
                .as_ref()
                .is_some_and(|t| t.in_batch && t.phase == Phase::Prompt)
            {
                self.send_progress(i);
            }
        }

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

    /// The LoRA configuration this step decodes (see [`placement::lora_turn`]); slots with
    /// work in another configuration wait one more step. `None` when no slot has work.
    fn lora_group(&mut self) -> Option<LoraConfig> {
        let waiting: Vec<Waiting<'_>> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let t = s.task.as_ref().filter(|t| t.has_work())?;
                Some(Waiting {
                    slot: i,
                    lora: &t.lora,
                    waited: s.waited,
                })
            })
            .collect();
        let i = lora_turn(&waiting, &self.lora_applied)?;
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
}
