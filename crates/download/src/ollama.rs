//! The Ollama registry: model names, manifests, and blobs by digest.
//!
//! A name is `[host/][namespace/]model[:tag]` with Ollama's defaults
//! (`registry.ollama.ai`, `library`, `latest`). The manifest is a docker manifest v2
//! (`GET /v2/{ns}/{model}/manifests/{tag}` with that media type in `Accept`); its layers
//! are fetched by digest from `/v2/{ns}/{model}/blobs/{digest}` and verified against it.
//! Pulled models are written in Ollama's own store layout (`blobs/sha256-…`,
//! `manifests/{host}/{ns}/{model}/{tag}`), which the catalog already reads.

use crate::error::{Error, Origin, Result};
use crate::http::{Request, Tokens};
use crate::queue::{FinalFile, TaskSpec};
use crate::transfer::FileSpec;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Client, Method};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

pub const DEFAULT_HOST: &str = catalog::ollama::DEFAULT_REGISTRY;
pub const DEFAULT_NAMESPACE: &str = "library";
pub const DEFAULT_TAG: &str = "latest";
/// The manifest format the registry is asked for (as Ollama asks).
pub const MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// A parsed model name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub host: String,
    pub namespace: String,
    pub model: String,
    pub tag: String,
    /// Plain http (`http://` in the name; needs `--insecure`).
    pub plain_http: bool,
}

impl Name {
    /// Parses `[http(s)://][host/][namespace/]model[:tag]`. `insecure` allows plain http:
    /// an explicit `http://` needs it, and with it a scheme-less name uses http, as
    /// `ollama pull --insecure` does.
    pub fn parse(input: &str, insecure: bool) -> Result<Name> {
        let bad = |why: &str| Error::InvalidName(format!("{input:?} is not a model name: {why}"));
        let (rest, plain_http) = if let Some(r) = input.strip_prefix("http://") {
            if !insecure {
                return Err(Error::InvalidName(format!(
                    "{input:?} uses plain http: pass --insecure to allow it"
                )));
            }
            (r, true)
        } else if let Some(r) = input.strip_prefix("https://") {
            (r, false)
        } else {
            (input, insecure)
        };
        if rest.contains('@') {
            return Err(bad("pulling by digest is not supported; use a tag"));
        }
        let (path, tag) = match rest.rsplit_once(':') {
            // A colon after the last slash is the tag; before it, a host's port.
            Some((p, t)) if !t.contains('/') => (p, t),
            _ => (rest, DEFAULT_TAG),
        };
        let parts: Vec<&str> = path.split('/').collect();
        let (host, namespace, model) = match parts.as_slice() {
            [m] => (DEFAULT_HOST, DEFAULT_NAMESPACE, *m),
            [ns, m] => (DEFAULT_HOST, *ns, *m),
            [h, ns, m] => (*h, *ns, *m),
            _ => return Err(bad("expected [host/][namespace/]model[:tag]")),
        };
        let word = |s: &str, max: usize| {
            !s.is_empty()
                && s.len() <= max
                && s.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        if !word(model, 80) || !word(namespace, 80) {
            return Err(bad(
                "namespace and model are letters, digits, '.', '_' and '-'",
            ));
        }
        if !word(tag, 80) {
            return Err(bad("the tag is letters, digits, '.', '_' and '-'"));
        }
        // The host is a folder of the manifest path: `.`, `..` or `.x` must not be one.
        let host_ok = !host.is_empty()
            && !host.starts_with('.')
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
        if !host_ok {
            return Err(bad("bad registry host"));
        }
        Ok(Name {
            host: host.to_string(),
            namespace: namespace.to_string(),
            model: model.to_string(),
            tag: tag.to_string(),
            plain_http,
        })
    }

    fn base(&self) -> String {
        let scheme = if self.plain_http { "http" } else { "https" };
        format!(
            "{scheme}://{}/v2/{}/{}",
            self.host, self.namespace, self.model
        )
    }

    pub fn manifest_url(&self) -> String {
        format!("{}/manifests/{}", self.base(), self.tag)
    }

    pub fn blob_url(&self, digest: &str) -> String {
        format!("{}/blobs/{digest}", self.base())
    }

    /// The short form Ollama shows (`llama3.2:1b`, `ns/m:tag`, `host/ns/m:tag`).
    pub fn short(&self) -> String {
        catalog::ollama::short_name(&self.host, &self.namespace, &self.model, &self.tag)
    }

    fn origin(&self) -> Origin {
        Origin::Ollama { name: self.short() }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}:{}",
            self.host, self.namespace, self.model, self.tag
        )
    }
}

/// A docker manifest v2 as the Ollama registry serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Layer,
    pub layers: Vec<Layer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Layer {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// What a layer holds, from its media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerKind {
    /// The GGUF weights.
    Model,
    /// The chat template (Go template text).
    Template,
    /// Default parameters (JSON).
    Params,
    /// The default system prompt.
    System,
    License,
    /// The vision projector (GGUF).
    Projector,
    Adapter,
    /// Example messages (JSON).
    Messages,
    Other(String),
}

impl Layer {
    pub fn kind(&self) -> LayerKind {
        match self
            .media_type
            .strip_prefix("application/vnd.ollama.image.")
        {
            Some("model") => LayerKind::Model,
            Some("template") => LayerKind::Template,
            Some("params") => LayerKind::Params,
            Some("system") => LayerKind::System,
            Some("license") => LayerKind::License,
            Some("projector") => LayerKind::Projector,
            Some("adapter") => LayerKind::Adapter,
            Some("messages") => LayerKind::Messages,
            _ => LayerKind::Other(self.media_type.clone()),
        }
    }

    /// The sha256 of a `sha256:<64 hex>` digest; `None` for anything else.
    pub fn sha256(&self) -> Option<&str> {
        let hex = self.digest.strip_prefix("sha256:")?;
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
    }
}

/// A manifest as served (its exact bytes are what the store keeps) and as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedManifest {
    pub manifest: Manifest,
    pub raw: Vec<u8>,
}

/// A registry client.
#[derive(Clone)]
pub struct Registry {
    client: Client,
    tokens: Tokens,
}

/// A manifest larger than this is not a model's manifest.
const MAX_MANIFEST: usize = 1 << 20;

impl Registry {
    pub fn new(client: Client) -> Registry {
        Registry::with_tokens(client, Tokens::default())
    }

    /// A client sharing `tokens` with the queue's transfers (`TransferOptions::tokens`),
    /// so that the token fetched for a manifest also fetches its blobs.
    pub fn with_tokens(client: Client, tokens: Tokens) -> Registry {
        Registry { client, tokens }
    }

    /// The manifest of `name`, checked to be a model this product can pull.
    pub async fn manifest(&self, name: &Name) -> Result<FetchedManifest> {
        let url = name.manifest_url();
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(MANIFEST_V2));
        let origin = name.origin();
        let followed = Request {
            client: &self.client,
            method: Method::GET,
            url: &url,
            headers,
            bearer: None,
            origin: &origin,
        }
        .send_authorized(&self.tokens)
        .await?;
        let raw = crate::http::read_capped(followed.response, MAX_MANIFEST, &url).await?;
        let protocol = |message: String| Error::Protocol {
            url: url.clone(),
            message,
        };
        let manifest: Manifest = serde_json::from_slice(&raw)
            .map_err(|e| protocol(format!("not a docker v2 manifest: {e}")))?;
        if manifest.schema_version != 2 {
            return Err(protocol(format!(
                "manifest schema version {} (only 2 is understood)",
                manifest.schema_version
            )));
        }
        for layer in std::iter::once(&manifest.config).chain(&manifest.layers) {
            if layer.sha256().is_none() {
                return Err(protocol(format!("bad layer digest {:?}", layer.digest)));
            }
        }
        if !manifest.layers.iter().any(|l| l.kind() == LayerKind::Model) {
            return Err(protocol(format!(
                "{} has no model layer (not a GGUF model)",
                name.short()
            )));
        }
        Ok(FetchedManifest { manifest, raw })
    }
}

/// What pulling `name` means: every blob (config and layers) into `store`'s blobs folder
/// through `partial_dir`, then the manifest written last, so that the catalog sees the
/// model only when every blob it names is in place and verified.
pub fn pull_plan(
    name: &Name,
    fetched: &FetchedManifest,
    store: &Path,
    partial_dir: &Path,
) -> Result<TaskSpec> {
    let m = &fetched.manifest;
    let mut files: Vec<FileSpec> = Vec::new();
    for layer in std::iter::once(&m.config).chain(&m.layers) {
        let sha = layer
            .sha256()
            .ok_or_else(|| Error::InvalidName(format!("bad layer digest {:?}", layer.digest)))?;
        if files.iter().any(|f| f.sha256.as_deref() == Some(sha)) {
            continue; // the same blob named twice is fetched once
        }
        let dest = catalog::ollama::blob_path(store, &layer.digest)
            .ok_or_else(|| Error::InvalidName(format!("bad layer digest {:?}", layer.digest)))?;
        files.push(FileSpec {
            url: name.blob_url(&layer.digest),
            mirror_url: None,
            dest,
            partial: partial_dir.join(format!("sha256-{sha}.part")),
            sha256: Some(sha.to_string()),
            size: Some(layer.size),
            origin: name.origin(),
            bearer: None,
        });
    }
    Ok(TaskSpec {
        label: name.short(),
        files,
        finish: vec![FinalFile {
            path: catalog::ollama::manifest_path(
                store,
                &name.host,
                &name.namespace,
                &name.model,
                &name.tag,
            ),
            bytes: fetched.raw.clone(),
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Name {
        Name::parse(s, false).unwrap()
    }

    #[test]
    fn names_take_ollamas_defaults() {
        let n = parse("llama3.2:1b");
        assert_eq!(
            (
                n.host.as_str(),
                n.namespace.as_str(),
                n.model.as_str(),
                n.tag.as_str()
            ),
            ("registry.ollama.ai", "library", "llama3.2", "1b")
        );
        assert_eq!(parse("llama3.2").tag, "latest");
        assert_eq!(parse("ns/m").namespace, "ns");
        assert_eq!(parse("llama3.2:1b").short(), "llama3.2:1b");
        assert_eq!(
            parse("registry.ollama.ai/library/m").manifest_url(),
            "https://registry.ollama.ai/v2/library/m/manifests/latest"
        );
    }

    #[test]
    fn an_explicit_host_keeps_its_port_and_insecure_means_http() {
        let n = Name::parse("127.0.0.1:5000/library/tiny:latest", true).unwrap();
        assert_eq!(
            (n.host.as_str(), n.tag.as_str()),
            ("127.0.0.1:5000", "latest")
        );
        assert_eq!(
            n.blob_url("sha256:ab"),
            "http://127.0.0.1:5000/v2/library/tiny/blobs/sha256:ab"
        );
        let n = Name::parse("127.0.0.1:5000/library/tiny", false).unwrap();
        assert_eq!((n.tag.as_str(), n.plain_http), ("latest", false));
        assert!(Name::parse("http://127.0.0.1:5000/library/tiny", false).is_err());
        assert!(
            Name::parse("http://127.0.0.1:5000/library/tiny", true)
                .unwrap()
                .plain_http
        );
    }

    #[test]
    fn hostile_names_are_refused() {
        for bad in [
            "",
            "a/b/c/d",
            "../x",
            "m:../../x",
            "m:",
            "h/ns/m@sha256:00",
            "a b",
            "/m",
            "../ns/m",
            "./ns/m:t",
            ".hidden/ns/m",
        ] {
            assert!(Name::parse(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn layer_kinds_and_digests() {
        let l = |t: &str, d: &str| Layer {
            media_type: format!("application/vnd.ollama.image.{t}"),
            digest: d.into(),
            size: 1,
        };
        let good = format!("sha256:{}", "a".repeat(64));
        assert_eq!(l("model", &good).kind(), LayerKind::Model);
        assert_eq!(l("params", &good).kind(), LayerKind::Params);
        assert_eq!(l("projector", &good).kind(), LayerKind::Projector);
        assert!(matches!(l("x", &good).kind(), LayerKind::Other(_)));
        assert!(l("model", &good).sha256().is_some());
        assert!(l("model", "sha256:../../etc").sha256().is_none());
        assert!(
            l("model", &format!("md5:{}", "a".repeat(64)))
                .sha256()
                .is_none()
        );
    }
}
