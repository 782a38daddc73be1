//! Slot files: saving an idle slot's KV cache and tokens, restoring them, erasing them.

use std::path::Path;

use super::Host;
use crate::error::EngineError;
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

    /// Clear an idle slot's cache; the number of tokens dropped.
    pub(super) fn erase_slot(&mut self, id: u32) -> Result<u32, EngineError> {
        let i = self.idle_slot(id)?;
        let n = self.slots[i].cache.len() as u32;
        self.clear_seq(i);
        Ok(n)
    }
}
