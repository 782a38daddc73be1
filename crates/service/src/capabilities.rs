//! Model capabilities and parameter counts, computed once per file version
//! ([`catalog::capabilities`] reads the header) and cached here, so status pages and model
//! lists do not re-read GGUF files on every request.

use catalog::ModelEntry;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

/// A file version: a replaced or re-downloaded file is read again.
type Version = (Option<SystemTime>, u64);

#[derive(Default)]
pub(crate) struct Cache {
    by_id: Mutex<HashMap<String, (Version, Facts)>>,
}

/// What one read of the header tells.
#[derive(Debug, Clone, Default)]
struct Facts {
    capabilities: Vec<String>,
    /// Weights in the first file (a split model's other parts are not read).
    parameters: Option<u64>,
}

impl Cache {
    /// The capabilities of `entry`. `loaded_fim`: the loaded model's own answer on
    /// fill-in-the-middle tokens (it checks the vocabulary, the file only the keys).
    pub(crate) async fn get(&self, entry: &ModelEntry, loaded_fim: Option<bool>) -> Vec<String> {
        let mut caps = self.facts(entry).await.capabilities;
        let listed = caps.iter().any(|c| c == "infill");
        let can_generate = caps.iter().any(|c| c == "completion");
        match loaded_fim {
            Some(true) if !listed && can_generate => caps.push("infill".into()),
            Some(false) if listed => caps.retain(|c| c != "infill"),
            _ => {}
        }
        caps
    }

    /// How many weights the model has (its first file's tensors), when readable.
    pub(crate) async fn parameters(&self, entry: &ModelEntry) -> Option<u64> {
        self.facts(entry).await.parameters
    }

    async fn facts(&self, entry: &ModelEntry) -> Facts {
        let version = version(entry);
        if let Some((v, facts)) = self.lock().get(&entry.id)
            && *v == version
        {
            return facts.clone();
        }
        let e = entry.clone();
        let read = tokio::task::spawn_blocking(move || read(&e)).await;
        let facts = match read {
            Ok(Ok(facts)) => facts,
            // An unreadable file can do nothing; not cached, so a fixed file is read again.
            Ok(Err(e)) => {
                tracing::warn!(model = %entry.id, error = %e, "cannot read the model's capabilities");
                return Facts::default();
            }
            Err(_) => return Facts::default(),
        };
        self.lock()
            .insert(entry.id.clone(), (version, facts.clone()));
        facts
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Version, Facts)>> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The file's capabilities ([`catalog::capabilities`]), plus `thinking` when the model chats
/// with a template that thinks ([`chat::template_thinks`]: the templates' knowledge, which
/// the catalog does not have). Blocking.
fn read(entry: &ModelEntry) -> Result<Facts, gguf::GgufError> {
    let file = catalog::capabilities::read_header(entry)?;
    let mut caps = catalog::capabilities::from_file(&file, entry.mmproj.is_some());
    if caps.iter().any(|c| c == "chat") && file.chat_template().is_some_and(chat::template_thinks) {
        caps.push("thinking".into());
    }
    Ok(Facts {
        capabilities: caps,
        parameters: Some(file.parameter_count()).filter(|&n| n > 0),
    })
}

fn version(entry: &ModelEntry) -> Version {
    let meta = std::fs::metadata(&entry.path).ok();
    (
        meta.as_ref().and_then(|m| m.modified().ok()),
        meta.map_or(0, |m| m.len()),
    )
}
