//! A slot's state (its tokens and their KV) saved and restored: to slot files
//! (`/slots/{id}?action=save|restore|erase`) and to the host-RAM prompt cache
//! (`cache_ram_mib`, [`super::prompt_cache`]). Both put a restored state into the slot the
//! same way ([`Host::adopt_state`]).

use std::path::Path;

use llama_cpp_2::context::session::LlamaStateSeqFlags;
use llama_cpp_2::token::LlamaToken;

use super::Host;
use super::placement::{SLOT_PROMPT_SIMILARITY, common_prefix};
use super::prompt_cache::Entry;
use crate::error::EngineError;
use crate::lora::LoraConfig;
use crate::slot::SlotFileInfo;

impl Host<'_> {
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

    pub(super) fn save_slot(&mut self, id: u32, path: &Path) -> Result<SlotFileInfo, EngineError> {
        let i = self.idle_slot(id)?;
        let err = |reason: String| EngineError::SlotFile {
            path: path.to_path_buf(),
            reason,
        };
        // Atomic and private: llama.cpp writes into a temporary file of our own in the
        // same folder (created with mode 0600, a fresh name, so nothing else is clobbered),
        // which is synced and renamed over the final name only when complete. Any error
        // drops the temporary file, so the final name holds the old file or the new one,
        // never a truncated one.
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".slot-")
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(|e| err(e.to_string()))?;
        let slot = &self.slots[i];
        let n_bytes = self
            .ctx
            .state_seq_save_file(tmp.path(), slot.seq(), &slot.cache)
            .map_err(|e| err(e.to_string()))?;
        tmp.as_file().sync_all().map_err(|e| err(e.to_string()))?;
        tmp.persist(path).map_err(|e| err(e.error.to_string()))?;
        // Make the rename durable too (not every filesystem can sync a folder).
        if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
            tracing::debug!("could not sync {}: {e}", dir.display());
        }
        Ok(SlotFileInfo {
            id,
            n_tokens: slot.cache.len() as u32,
            n_bytes: n_bytes as u64,
        })
    }

    pub(super) fn restore_slot(
        &mut self,
        id: u32,
        path: &Path,
    ) -> Result<SlotFileInfo, EngineError> {
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
                // Slot files do not record LoRA scales: count the cache as computed under
                // the global ones.
                let lora = self.adapters.global().clone();
                self.adopt_state(i, tokens, lora);
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

    /// Clear an idle slot's cache; the number of tokens dropped.
    pub(super) fn erase_slot(&mut self, id: u32) -> Result<u32, EngineError> {
        let i = self.idle_slot(id)?;
        let n = self.slots[i].cache.len() as u32;
        self.clear_seq(i);
        Ok(n)
    }
}

// -------------------------------------------------------------------------------------
// The RAM prompt cache

impl Host<'_> {
    /// The slot's tokens are now those whose KV its sequence holds (just restored), computed
    /// under `lora`.
    fn adopt_state(&mut self, i: usize, tokens: Vec<LlamaToken>, lora: LoraConfig) {
        self.slots[i].cache = tokens;
        self.slots[i].cache_lora = lora;
    }

    /// Copies slot `i`'s state into the prompt cache, unless it is empty, already there, or
    /// larger than the whole cache (measured before anything is copied). True if stored.
    pub(super) fn cache_slot(&mut self, i: usize) -> bool {
        let Some(cache) = self.prompt_cache.as_ref() else {
            return false;
        };
        let slot = &self.slots[i];
        if slot.cache.is_empty() || cache.contains(&slot.cache, &slot.cache_lora) {
            return false;
        }
        let flags = LlamaStateSeqFlags::empty();
        let n_bytes = self.ctx.state_seq_get_size_ext(slot.seq(), flags) as u64;
        if !cache.admits(n_bytes) {
            tracing::debug!(
                slot = i,
                n_bytes,
                "prompt state is larger than the prompt cache (cache_ram_mib): not kept"
            );
            return false;
        }
        let state = match self.ctx.state_seq_get(slot.seq(), flags) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(slot = i, error = %e, "could not copy a slot's state");
                return false;
            }
        };
        let entry = Entry {
            tokens: slot.cache.clone(),
            lora: slot.cache_lora.clone(),
            n_bytes: state.byte_len() as u64,
            state,
        };
        let n_tokens = entry.tokens.len();
        let cache = self.prompt_cache.as_mut().expect("checked above");
        let evicted = cache.insert(entry);
        tracing::debug!(
            slot = i,
            n_tokens,
            evicted,
            entries = cache.len(),
            bytes = cache.n_bytes(),
            "saved a prompt to the prompt cache"
        );
        self.publish_cache();
        true
    }

    /// Before slot `i` starts on `prompt` (under `lora`), as llama-server's
    /// `get_available_slot`: if the slot would lose most of what it holds (or shares too
    /// little to have been chosen for it), its state goes to the prompt cache, and the
    /// cached prompt that serves `prompt` better than the slot does is restored into it.
    pub(super) fn update_prompt_cache(
        &mut self,
        i: usize,
        prompt: &[LlamaToken],
        lora: &LoraConfig,
        restore: bool,
    ) {
        if self.prompt_cache.is_none() {
            return;
        }
        let slot = &self.slots[i];
        let lcp = if slot.cache_lora[..] == lora[..] {
            common_prefix(&slot.cache, prompt)
        } else {
            0
        };
        let slot_len = slot.cache.len();
        let loses_most = slot_len == 0 || (lcp as f32) < 0.5 * slot_len as f32;
        let shares_little = lcp as f32 <= SLOT_PROMPT_SIMILARITY * prompt.len() as f32;
        if !(loses_most || shares_little) {
            return;
        }
        // llama-server's log line, which its test suite looks for.
        tracing::debug!(slot = i, "updating prompt cache");
        self.cache_slot(i);
        if !restore {
            return;
        }
        let cache = self.prompt_cache.as_mut().expect("checked above");
        let Some(entry) = cache.take_best(prompt, lora, lcp, slot_len) else {
            return;
        };
        self.clear_seq(i);
        let seq = self.slots[i].seq();
        match self.ctx.state_seq_set(&entry.state, seq) {
            Ok(()) => {
                tracing::debug!(
                    slot = i,
                    n_tokens = entry.tokens.len(),
                    "restored a prompt from the prompt cache"
                );
                self.shared
                    .counters
                    .prompt_cache_hits
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.adopt_state(i, entry.tokens, entry.lora);
            }
            Err(e) => {
                tracing::warn!(slot = i, error = %e, "could not restore a cached prompt");
                self.clear_seq(i);
            }
        }
        self.publish_cache();
    }

    /// `cache_idle_slots`: when a task starts, every idle slot's state goes to the prompt
    /// cache, and with unified KV the slot is cleared, leaving the shared pool to the busy
    /// slots (a later request restores it from RAM), as llama-server does.
    pub(super) fn cache_idle_slots(&mut self) {
        if !self.cfg.cache_idle_slots || self.prompt_cache.is_none() {
            return;
        }
        for i in 0..self.slots.len() {
            if self.slots[i].task.is_some() {
                continue;
            }
            if self.cache_slot(i) {
                // llama-server's log tag, which its test suite looks for.
                tracing::debug!(slot = i, "saved an idle slot: __TEST_TAG_CACHE_IDLE_SLOT__");
            }
            if self.cfg.kv_pool.is_some() && !self.slots[i].cache.is_empty() {
                self.clear_seq(i);
            }
        }
    }

    /// The prompt cache's size, for `/metrics`.
    pub(super) fn publish_cache(&self) {
        let bytes = self.prompt_cache.as_ref().map_or(0, |c| c.n_bytes());
        self.shared
            .counters
            .prompt_cache_bytes
            .store(bytes, std::sync::atomic::Ordering::Relaxed);
    }
}
