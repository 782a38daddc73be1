//! Model capabilities, computed once per file version ([`catalog::capabilities`] reads the
//! header) and cached here, so status pages do not re-read GGUF files on every request.

use catalog::ModelEntry;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

/// A file version: a replaced or re-downloaded file is read again.
type Version = (Option<SystemTime>, u64);

#[derive(Default)]
pub(crate) struct Cache {
    by_id: Mutex<HashMap<String, (Version, Vec<String>)>>,
}

impl Cache {
    /// The capabilities of `entry`. `loaded_fim`: the loaded model's own answer on
    /// fill-in-the-middle tokens (it checks the vocabulary, the file only the keys).
    pub(crate) async fn get(&self, entry: &ModelEntry, loaded_fim: Option<bool>) -> Vec<String> {
        let mut caps = self.file_capabilities(entry).await;
        let listed = caps.iter().any(|c| c == "infill");
        let can_generate = caps.iter().any(|c| c == "completion");
        match loaded_fim {
            Some(true) if !listed && can_generate => caps.push("infill".into()),
            Some(false) if listed => caps.retain(|c| c != "infill"),
            _ => {}
        }
        caps
    }

    async fn file_capabilities(&self, entry: &ModelEntry) -> Vec<String> {
        let version = version(entry);
        if let Some((v, caps)) = self.lock().get(&entry.id)
            && *v == version
        {
            return caps.clone();
        }
        let e = entry.clone();
        let read = tokio::task::spawn_blocking(move || catalog::capabilities(&e)).await;
        let caps = match read {
            Ok(Ok(caps)) => caps,
            // An unreadable file can do nothing; not cached, so a fixed file is read again.
            Ok(Err(e)) => {
                tracing::warn!(model = %entry.id, error = %e, "cannot read the model's capabilities");
                return Vec::new();
            }
            Err(_) => return Vec::new(),
        };
        self.lock()
            .insert(entry.id.clone(), (version, caps.clone()));
        caps
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Version, Vec<String>)>> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn version(entry: &ModelEntry) -> Version {
    let meta = std::fs::metadata(&entry.path).ok();
    (
        meta.as_ref().and_then(|m| m.modified().ok()),
        meta.map_or(0, |m| m.len()),
    )
}
