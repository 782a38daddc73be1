//! The Hugging Face hub: search, model info, a repository's GGUF files, and the resolve
//! URLs files are downloaded from.
//!
//! Routes and headers as huggingface_hub uses them:
//! - `GET /api/models?search=&filter=gguf&sort=&direction=-1&limit=`, paged by a
//!   `Link: <…>; rel="next"` header;
//! - `GET /api/models/{repo}` (siblings, tags, downloads, likes, gated, card data);
//! - `GET /api/models/{repo}/tree/{rev}?recursive=true` (size and LFS oid per file, paged);
//! - `GET /{repo}/resolve/{rev}/{file}`, answered with a redirect to the CDN that carries
//!   `X-Linked-Etag`, `X-Linked-Size` and `X-Repo-Commit`.
//!
//! The endpoint is `HF_ENDPOINT` (as huggingface_hub reads it) or a setting; the token
//! `HF_TOKEN` goes to that endpoint only, never to the mirror (a token must not leave the
//! origin it was given for; to use one with a mirror, make the mirror the endpoint).
//!
//! A mirror ([`Mirror`]) serves the same routes under another base URL. `always` sends
//! everything there; `auto` tries the main endpoint first and turns to the mirror when it
//! does not answer at all (connection refused or timed out) — an answer, even a 4xx, is
//! the hub's word and is kept. The switch is remembered by the client, and each file's
//! spec carries the mirror's URL too, so that a transfer whose hub stops answering
//! continues from the mirror (saying so in the task's log).

use crate::error::{Error, Origin, Result};
use crate::http::{Request, next_link};
use crate::transfer::FileSpec;
use reqwest::{Client, Method, header::HeaderMap};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use url::Url;

pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// A hub client for one endpoint (and optionally its mirror).
#[derive(Clone)]
pub struct Hub {
    client: Client,
    endpoint: Url,
    token: Option<String>,
    mirror: Option<(Url, MirrorPolicy)>,
    /// `auto` found the main endpoint silent: every request goes to the mirror.
    on_mirror: Arc<AtomicBool>,
}

/// When the mirror is used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MirrorPolicy {
    /// When the main endpoint does not answer (not on an error status).
    #[default]
    Auto,
    /// Always, instead of the main endpoint.
    Always,
}

/// Search order; always descending, as the hub's own listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sort {
    #[default]
    Downloads,
    Likes,
    Updated,
}

impl Sort {
    fn api_key(self) -> &'static str {
        match self {
            Sort::Downloads => "downloads",
            Sort::Likes => "likes",
            Sort::Updated => "lastModified",
        }
    }
}

/// A search for GGUF models.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub text: String,
    pub sort: Sort,
    /// Results per page (the hub caps it; 0 means the hub's default).
    pub limit: u32,
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelSummary {
    pub id: String,
    #[serde(default)]
    pub downloads: u64,
    #[serde(default)]
    pub likes: u64,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub last_modified: Option<String>,
    #[serde(default)]
    pub pipeline_tag: Option<String>,
}

/// A page of search results and the URL of the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    pub models: Vec<ModelSummary>,
    pub next: Option<String>,
}

/// `/api/models/{repo}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelInfo {
    pub id: String,
    /// The commit `main` points to.
    #[serde(default)]
    pub sha: Option<String>,
    #[serde(default)]
    pub siblings: Vec<Sibling>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub downloads: u64,
    #[serde(default)]
    pub likes: u64,
    /// `false`, `"auto"` or `"manual"` on the hub; `None` when not gated.
    #[serde(default, deserialize_with = "gated")]
    pub gated: Option<String>,
    #[serde(default)]
    pub last_modified: Option<String>,
    #[serde(default)]
    pub card_data: Option<serde_json::Value>,
}

impl ModelInfo {
    /// The license from the model card, else from a `license:` tag.
    pub fn license(&self) -> Option<String> {
        self.card_data
            .as_ref()
            .and_then(|c| c.get("license"))
            .and_then(|l| l.as_str())
            .map(str::to_string)
            .or_else(|| {
                self.tags
                    .iter()
                    .find_map(|t| t.strip_prefix("license:").map(str::to_string))
            })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sibling {
    pub rfilename: String,
}

fn gated<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Bool(true) => Some("true".into()),
        _ => None,
    })
}

/// One entry of `/api/models/{repo}/tree/{rev}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub path: String,
    #[serde(default)]
    pub size: u64,
    /// The git blob id (for LFS files, of the pointer).
    #[serde(default)]
    pub oid: String,
    #[serde(default)]
    pub lfs: Option<Lfs>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lfs {
    /// The content's sha256.
    pub oid: String,
    pub size: u64,
}

/// One file of a repository, as needed to download and verify it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteFile {
    pub path: String,
    pub size: u64,
    /// sha256 of the content (LFS files only; small git files have none).
    pub sha256: Option<String>,
}

/// A model file as a user picks it: one GGUF file, or a whole split set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GgufModel {
    /// The file name, or for a split set its common prefix (`dir/Model-Q4_K_M`).
    pub name: String,
    pub quantization: Option<String>,
    /// A vision projector (`mmproj-*.gguf`), not a model on its own.
    pub mmproj: bool,
    /// In order; more than one for a split set.
    pub parts: Vec<RemoteFile>,
    /// Parts a split set announces that the repository does not have.
    pub missing_parts: u32,
    pub size: u64,
}

impl Hub {
    /// A client for `endpoint` (e.g. `https://huggingface.co` or a mirror).
    pub fn new(client: Client, endpoint: &str, token: Option<String>) -> Result<Hub> {
        let endpoint = endpoint_url(endpoint)?;
        Ok(Hub {
            client,
            endpoint,
            token: token.filter(|t| !t.trim().is_empty()),
            mirror: None,
            on_mirror: Arc::default(),
        })
    }

    /// The same client with a mirror endpoint (e.g. `https://hf-mirror.com`) used as
    /// `policy` says.
    pub fn with_mirror(mut self, mirror: &str, policy: MirrorPolicy) -> Result<Hub> {
        let url = endpoint_url(mirror)?;
        self.on_mirror = Arc::new(AtomicBool::new(policy == MirrorPolicy::Always));
        self.mirror = Some((url, policy));
        Ok(self)
    }

    /// The endpoint and token from `HF_ENDPOINT` and `HF_TOKEN`, as huggingface_hub reads them.
    pub fn from_env(client: Client) -> Result<Hub> {
        let endpoint = std::env::var("HF_ENDPOINT").unwrap_or_else(|_| DEFAULT_ENDPOINT.into());
        Hub::new(client, &endpoint, std::env::var("HF_TOKEN").ok())
    }

    /// The endpoint requests go to now (the mirror once `auto` has turned to it).
    pub fn endpoint(&self) -> &str {
        self.active().as_str()
    }

    fn always_mirror(&self) -> bool {
        matches!(self.mirror, Some((_, MirrorPolicy::Always)))
    }

    fn active(&self) -> &Url {
        match &self.mirror {
            Some((mirror, _)) if self.on_mirror.load(Ordering::Relaxed) => mirror,
            _ => &self.endpoint,
        }
    }

    /// `url` (under the main endpoint) moved under the mirror's.
    fn mirrored(&self, url: &str) -> Option<String> {
        let (mirror, _) = self.mirror.as_ref()?;
        let rest = url.strip_prefix(self.endpoint.as_str())?;
        Some(format!("{mirror}{rest}"))
    }

    /// First page of a GGUF model search.
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchPage> {
        let mut url = self.url(&["api", "models"]);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("search", &query.text)
                .append_pair("filter", "gguf")
                .append_pair("sort", query.sort.api_key())
                .append_pair("direction", "-1");
            if query.limit > 0 {
                q.append_pair("limit", &query.limit.to_string());
            }
        }
        self.search_page(url.as_str()).await
    }

    /// The page a previous page's `next` points to.
    pub async fn search_page(&self, url: &str) -> Result<SearchPage> {
        let origin = Origin::HuggingFace {
            repo: String::new(),
            revision: String::new(),
            file: None,
        };
        let (models, headers) = self.get_json::<Vec<ModelSummary>>(url, &origin).await?;
        Ok(SearchPage {
            models,
            next: next_link(&headers),
        })
    }

    /// `/api/models/{repo}`.
    pub async fn model_info(&self, repo: &str) -> Result<ModelInfo> {
        let url = self.url(&[&["api", "models"], repo_segments(repo)?.as_slice()].concat());
        let origin = repo_origin(repo, "main", None);
        Ok(self.get_json(url.as_str(), &origin).await?.0)
    }

    /// Every file of the repository at `revision`, following the tree's paging.
    pub async fn tree(&self, repo: &str, revision: &str) -> Result<Vec<TreeEntry>> {
        let segments = [
            &["api", "models"],
            repo_segments(repo)?.as_slice(),
            &["tree", revision],
        ]
        .concat();
        let mut url = self.url(&segments);
        url.query_pairs_mut().append_pair("recursive", "true");
        let origin = repo_origin(repo, revision, None);
        let mut entries = Vec::new();
        let mut next = Some(url.to_string());
        // A hostile server could page forever: the hub's largest repos fit in far fewer.
        for _ in 0..1000 {
            let Some(page) = next.take() else { break };
            let (mut part, headers) = self.get_json::<Vec<TreeEntry>>(&page, &origin).await?;
            entries.append(&mut part);
            next = next_link(&headers);
        }
        Ok(entries)
    }

    /// The repository's GGUF models: split sets grouped, quantization read from the
    /// names, projectors marked.
    pub async fn gguf_models(&self, repo: &str, revision: &str) -> Result<Vec<GgufModel>> {
        Ok(gguf_models(&self.tree(repo, revision).await?))
    }

    /// `{endpoint}/{repo}/resolve/{rev}/{file}`.
    pub fn resolve_url(&self, repo: &str, revision: &str, file: &str) -> Result<String> {
        let segments = [
            repo_segments(repo)?.as_slice(),
            &["resolve", revision],
            file.split('/').collect::<Vec<_>>().as_slice(),
        ]
        .concat();
        Ok(self.url(&segments).to_string())
    }

    /// What to fetch for one file of a repository: resolved URL, expected sha256 and
    /// size, the partial file under `partial_dir` and the destination under `dest_dir`.
    pub fn file_spec(
        &self,
        repo: &str,
        revision: &str,
        file: &RemoteFile,
        dest_dir: &Path,
        partial_dir: &Path,
    ) -> Result<FileSpec> {
        let relative = safe_relative(&file.path).ok_or_else(|| {
            Error::InvalidName(format!("{repo}: refusing the file path {:?}", file.path))
        })?;
        // One name per (repo, revision, file): a repository id has no `--` (the hub forbids
        // it), a file's own `/` and `%` are escaped so that `a/b` and `a--b` differ, and a
        // revision other than main is part of the name.
        let at = match revision {
            "main" => String::new(),
            rev => format!("@{}", path_safe(rev)),
        };
        let partial_name = format!(
            "{}{at}--{}.part",
            repo.replace('/', "--"),
            relative.replace('%', "%25").replace('/', "%2F")
        );
        let url = self.resolve_url(repo, revision, &file.path)?;
        // Under `auto` the spec names the main endpoint and the mirror both, so that the
        // transfer itself turns to the mirror (and logs it) when the hub is silent.
        let (url, mirror_url) = match &self.mirror {
            Some((_, MirrorPolicy::Auto)) => {
                let main = self.on_main(&url);
                let mirror = self.mirrored(&main);
                (main, mirror)
            }
            _ => (url, None),
        };
        Ok(FileSpec {
            url,
            mirror_url,
            dest: dest_dir.join(relative),
            partial: partial_dir.join(partial_name),
            sha256: file.sha256.clone(),
            size: Some(file.size),
            origin: repo_origin(repo, revision, Some(&file.path)),
            // The token is for the main endpoint: the spec's URL is there unless `always`.
            bearer: self.token.clone().filter(|_| !self.always_mirror()),
        })
    }

    /// `url` under the main endpoint if it is under the mirror.
    fn on_main(&self, url: &str) -> String {
        match &self.mirror {
            Some((mirror, _)) => match url.strip_prefix(mirror.as_str()) {
                Some(rest) => format!("{}{rest}", self.endpoint),
                None => url.to_string(),
            },
            None => url.to_string(),
        }
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.active().clone();
        url.path_segments_mut()
            .expect("http URL has a path")
            .pop_if_empty()
            .extend(segments);
        url
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        origin: &Origin,
    ) -> Result<(T, HeaderMap)> {
        let request = |url, bearer| Request {
            client: &self.client,
            method: Method::GET,
            url,
            headers: HeaderMap::new(),
            bearer,
            origin,
        };
        // Never the token to the mirror, nor to a page URL on another origin (a `Link:
        // rel=next` or a search page a caller passes).
        let on_mirror = self.on_mirror.load(Ordering::Relaxed);
        let ours = Url::parse(url).is_ok_and(|u| u.origin() == self.endpoint.origin());
        let bearer = self.token.as_deref().filter(|_| !on_mirror && ours);
        let result = request(url, bearer).json().await;
        match (&result, &self.mirror) {
            (Err(e @ Error::Unreachable { .. }), Some((mirror, MirrorPolicy::Auto))) => {
                let Some(other) = self.mirrored(url) else {
                    return result;
                };
                tracing::warn!("{e}: using the mirror {mirror}");
                self.on_mirror.store(true, Ordering::Relaxed);
                request(&other, None).json().await
            }
            _ => result,
        }
    }
}

/// `s` as one file-name segment: separators and anything unusual become `_`.
pub fn path_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// An endpoint's base URL, ending in `/` so that paths join under it.
fn endpoint_url(endpoint: &str) -> Result<Url> {
    let mut url = Url::parse(endpoint).map_err(|e| Error::Protocol {
        url: endpoint.to_string(),
        message: format!("not a hub endpoint URL: {e}"),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Protocol {
            url: endpoint.to_string(),
            message: "a hub endpoint is an http(s) URL".into(),
        });
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

fn repo_origin(repo: &str, revision: &str, file: Option<&str>) -> Origin {
    Origin::HuggingFace {
        repo: repo.to_string(),
        revision: revision.to_string(),
        file: file.map(str::to_string),
    }
}

/// `org/name` → `["org", "name"]`, refusing anything else.
fn repo_segments(repo: &str) -> Result<Vec<&str>> {
    let parts: Vec<&str> = repo.split('/').collect();
    let valid = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    if parts.len() == 2 && parts.iter().all(|p| valid(p)) {
        Ok(parts)
    } else {
        Err(Error::InvalidName(format!(
            "{repo:?} is not a Hugging Face repository id (expected owner/name)"
        )))
    }
}

/// A repository path usable below a local folder: relative, no `..`, no empty parts.
fn safe_relative(path: &str) -> Option<&str> {
    let ok = !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && path
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..");
    ok.then_some(path)
}

/// Groups a tree listing into GGUF models (pure, for the listing and its tests).
pub fn gguf_models(entries: &[TreeEntry]) -> Vec<GgufModel> {
    // Key: the display name; value: parts by index, announced count.
    let mut sets: BTreeMap<String, (BTreeMap<u32, RemoteFile>, u32)> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.kind == "file") {
        let file_name = e.path.rsplit('/').next().unwrap_or(&e.path);
        if gguf::split::strip_gguf(file_name).is_none() {
            continue;
        }
        let remote = RemoteFile {
            path: e.path.clone(),
            size: e.lfs.as_ref().map_or(e.size, |l| l.size),
            sha256: e.lfs.as_ref().map(|l| l.oid.to_ascii_lowercase()),
        };
        let dir = &e.path[..e.path.len() - file_name.len()];
        let (name, index, count) = match gguf::split::parse(file_name) {
            Some(s) => (format!("{dir}{}", s.prefix), s.index, s.count),
            None => (e.path.clone(), 1, 1),
        };
        let set = sets.entry(name).or_insert_with(|| (BTreeMap::new(), count));
        set.1 = set.1.max(count);
        set.0.insert(index, remote);
    }
    sets.into_iter()
        .map(|(name, (parts, count))| {
            let parts: Vec<RemoteFile> = parts.into_values().collect();
            let first = parts[0]
                .path
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            GgufModel {
                quantization: gguf::quantization_in_name(&first),
                mmproj: first.to_ascii_lowercase().contains("mmproj"),
                missing_parts: count.saturating_sub(parts.len() as u32),
                size: parts.iter().map(|p| p.size).sum(),
                parts,
                name,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, size: u64, lfs: Option<&str>) -> TreeEntry {
        TreeEntry {
            kind: "file".into(),
            path: path.into(),
            size,
            oid: "git".into(),
            lfs: lfs.map(|oid| Lfs {
                oid: oid.into(),
                size,
            }),
        }
    }

    #[test]
    fn listing_groups_splits_marks_projectors_and_reads_quantization() {
        let entries = vec![
            file("README.md", 10, None),
            file("M-Q4_K_M.gguf", 100, Some("AA")),
            file("big/M-Q8_0-00002-of-00003.gguf", 30, Some("c2")),
            file("big/M-Q8_0-00001-of-00003.gguf", 20, Some("c1")),
            file("mmproj-M-f16.gguf", 5, Some("p")),
            TreeEntry {
                kind: "directory".into(),
                path: "big".into(),
                size: 0,
                oid: String::new(),
                lfs: None,
            },
        ];
        let models = gguf_models(&entries);
        let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["M-Q4_K_M.gguf", "big/M-Q8_0", "mmproj-M-f16.gguf"]);
        let split = &models[1];
        assert_eq!(split.quantization.as_deref(), Some("Q8_0"));
        assert_eq!(split.parts[0].path, "big/M-Q8_0-00001-of-00003.gguf");
        assert_eq!((split.size, split.missing_parts), (50, 1));
        assert_eq!(models[0].parts[0].sha256.as_deref(), Some("aa"));
        assert!(models[2].mmproj && !models[0].mmproj);
    }

    #[test]
    fn repo_ids_and_paths_cannot_escape() {
        assert!(repo_segments("org/name").is_ok());
        for bad in ["org", "org/name/x", "../x", "org/..", "org/na me", ""] {
            assert!(repo_segments(bad).is_err(), "{bad}");
        }
        assert_eq!(safe_relative("a/b.gguf"), Some("a/b.gguf"));
        for bad in ["/a", "a/../b", "a//b", "", "a\\b"] {
            assert_eq!(safe_relative(bad), None, "{bad}");
        }
    }

    #[test]
    fn urls_are_built_under_the_endpoint() {
        let client = Client::new();
        let hub = Hub::new(client, "http://mirror.example/hf", Some("t".into())).unwrap();
        assert_eq!(
            hub.resolve_url("org/m", "main", "dir/m.gguf").unwrap(),
            "http://mirror.example/hf/org/m/resolve/main/dir/m.gguf"
        );
        let spec = hub
            .file_spec(
                "org/m",
                "main",
                &RemoteFile {
                    path: "dir/m.gguf".into(),
                    size: 3,
                    sha256: Some("ab".into()),
                },
                Path::new("/models/org/m"),
                Path::new("/partial"),
            )
            .unwrap();
        assert_eq!(spec.dest, Path::new("/models/org/m/dir/m.gguf"));
        assert_eq!(
            spec.partial,
            Path::new("/partial/org--m--dir%2Fm.gguf.part")
        );
        assert_eq!(spec.bearer.as_deref(), Some("t"));
        // `dir/m.gguf` and `dir--m.gguf` are two files, two partial files; another
        // revision is a third.
        let partial = |path: &str, rev: &str| {
            let file = RemoteFile {
                path: path.into(),
                size: 3,
                sha256: None,
            };
            hub.file_spec("org/m", rev, &file, Path::new("/m"), Path::new("/p"))
                .unwrap()
                .partial
        };
        assert_ne!(
            partial("dir/m.gguf", "main"),
            partial("dir--m.gguf", "main")
        );
        assert_eq!(
            partial("dir--m.gguf", "refs/pr/1"),
            Path::new("/p/org--m@refs_pr_1--dir--m.gguf.part")
        );
    }
}
