//! The web dashboard's files (issue 15), built from `web/` by `build.rs` (npm ci when needed,
//! then vite build into this build's `OUT_DIR`) and embedded with rust-embed. The server
//! decides what is a page and how it is sent (`server::pages`); this crate only holds the
//! files and what is known about each at build time.

use rust_embed::RustEmbed;
use std::borrow::Cow;

#[derive(RustEmbed)]
#[folder = "$OUT_DIR/dist"]
struct Dist;

/// One file of the built dashboard.
pub struct File {
    pub bytes: Cow<'static, [u8]>,
    /// Its MIME type, from the extension.
    pub mime: String,
    /// Vite names files under `assets/` after a hash of their contents: they never change
    /// under the same name and may be cached for good.
    pub immutable: bool,
}

/// A precompressed copy made at build time (`web/vite.config.ts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Brotli,
    Gzip,
}

impl Encoding {
    /// The `Content-Encoding` value.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Encoding::Brotli => ".br",
            Encoding::Gzip => ".gz",
        }
    }
}

/// The file at `path` (relative, no leading `/`), as stored or as its precompressed copy
/// when one was made for `encoding`. The copies themselves are not files of their own.
pub fn file(path: &str, encoding: Option<Encoding>) -> Option<File> {
    if path.is_empty() || path.ends_with(".br") || path.ends_with(".gz") {
        return None;
    }
    let plain = Dist::get(path)?;
    let mime = plain.metadata.mimetype().to_string();
    let bytes = match encoding {
        Some(e) => Dist::get(&format!("{path}{}", e.suffix()))?.data,
        None => plain.data,
    };
    Some(File {
        bytes,
        mime,
        immutable: path.starts_with("assets/"),
    })
}

/// Whether the built dashboard has a file at `path` (relative).
pub fn has(path: &str) -> bool {
    file(path, None).is_some()
}

/// The dashboard's page: every client-side route is this one file.
pub const INDEX: &str = "index.html";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_hashed_assets_are_embedded() {
        let index = file(INDEX, None).expect("index.html is embedded");
        assert!(index.mime.starts_with("text/html"));
        assert!(!index.immutable);
        let html = String::from_utf8_lossy(&index.bytes).to_string();
        let script = html
            .split("src=\"/")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("index.html loads a script");
        let asset = file(script, None).expect("the script index.html names is embedded");
        assert!(asset.immutable, "{script} is a hashed asset");
        assert!(asset.mime.contains("javascript"));
    }

    #[test]
    fn compressed_copies_are_served_as_the_file_not_on_their_own() {
        let plain = file(INDEX, None).unwrap();
        let br = file(INDEX, Some(Encoding::Brotli)).expect("index.html.br is made at build time");
        assert_eq!(br.mime, plain.mime);
        assert!(br.bytes.len() < plain.bytes.len());
        assert!(file("index.html.br", None).is_none());
        assert!(file("", None).is_none());
    }
}
