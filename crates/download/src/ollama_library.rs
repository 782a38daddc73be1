//! The Ollama library's search and model pages. ollama.com has no JSON search API, so this
//! reads the HTML its website serves:
//! - `GET /search?q=…` and `GET /library`: one `li[x-test-model]` per model, holding a link to
//!   `/library/{name}`, the description, `[x-test-capability]` (tools, vision, thinking,
//!   embedding...), `[x-test-size]` (parameter sizes), `[x-test-pull-count]`,
//!   `[x-test-tag-count]` and `[x-test-updated]`;
//! - `GET /library/{name}/tags`: the same header facts for one model (`#summary-content`
//!   is its description) and one row per tag, each a link to `/library/{name}:{tag}` with
//!   its digest, size, context window and input kinds.
//!
//! Parsing leans on those markers and links, not on the layout's classes, and each field
//! that is missing is left empty rather than failing the page. A page with none of the
//! markers is the site changing its layout and is said so. The base URL is a setting, as
//! for the other hubs; only it differs between the tests (testhub serves saved pages) and
//! production.

use crate::error::{Error, Origin, Result};
use crate::http::Request;
use reqwest::{Client, Method, header};
use serde::Serialize;
use url::Url;

pub const DEFAULT_BASE: &str = "https://ollama.com";

/// Pages bigger than this are not read (the real ones are a few hundred kilobytes).
const MAX_PAGE: usize = 8 << 20;

/// One model of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LibraryModel {
    /// `qwen3`, or `namespace/model` for a user's model.
    pub name: String,
    pub description: String,
    /// `tools`, `vision`, `thinking`, `embedding`, ... as the site labels them.
    pub capabilities: Vec<String>,
    /// Parameter sizes (`0.6b`, `8x22b`).
    pub sizes: Vec<String>,
    /// Pulls, read from `8.2M`; `None` when the page has no count.
    pub pulls: Option<u64>,
    pub tag_count: Option<u32>,
    /// As the site says it (`3 weeks ago`).
    pub updated: Option<String>,
}

/// One tag of a model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LibraryTag {
    /// The tag alone (`8b`); pull it as `{model}:{tag}`.
    pub tag: String,
    /// The short digest the site shows (12 hex digits).
    pub digest: Option<String>,
    /// Bytes, read from `5.2GB` (decimal units, as the site uses them).
    pub size: Option<u64>,
    /// Tokens, read from `40K` (K = 1024).
    pub context: Option<u64>,
    /// `Text`, `Text, Image`.
    pub input: Option<String>,
    /// The site marks the tag `latest` points to.
    pub is_latest: bool,
}

/// A model's tags page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ModelTags {
    pub model: LibraryModel,
    pub tags: Vec<LibraryTag>,
}

/// A client of the library website.
#[derive(Clone)]
pub struct Library {
    client: Client,
    base: Url,
}

impl Library {
    pub fn new(client: Client, base: &str) -> Result<Library> {
        let base = Url::parse(base).map_err(|e| Error::InvalidName(format!("{base:?}: {e}")))?;
        Ok(Library { client, base })
    }

    /// `GET /search?q=…`: models whose name or description match.
    pub async fn search(&self, query: &str) -> Result<Vec<LibraryModel>> {
        let mut url = self.url(&["search"]);
        url.query_pairs_mut().append_pair("q", query);
        let page = self.page(&url).await?;
        off_runtime(&url, move || parse_listing(&page)).await
    }

    /// `GET /library`: the official models.
    pub async fn list(&self) -> Result<Vec<LibraryModel>> {
        let url = self.url(&["library"]);
        let page = self.page(&url).await?;
        off_runtime(&url, move || parse_listing(&page)).await
    }

    /// `GET /library/{name}/tags`: a model and its tags (`name` may be `namespace/model`;
    /// a user's model lives at `/{namespace}/{model}/tags`).
    pub async fn tags(&self, name: &str) -> Result<ModelTags> {
        let segments: Vec<&str> = match name.split_once('/') {
            Some((ns, model)) if !ns.is_empty() && !model.is_empty() && !model.contains('/') => {
                vec![ns, model, "tags"]
            }
            None if !name.is_empty() => vec!["library", name, "tags"],
            _ => {
                return Err(Error::InvalidName(format!(
                    "not an Ollama model name: {name:?}"
                )));
            }
        };
        let url = self.url(&segments);
        let page = self.page(&url).await?;
        let name = name.to_string();
        off_runtime(&url, move || parse_tags(&page, &name)).await
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// One page as text; a site that does not answer is said to be unreachable by name.
    async fn page(&self, url: &Url) -> Result<String> {
        let origin = Origin::Url;
        let mut headers = header::HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            header::HeaderValue::from_static("text/html"),
        );
        let req = Request {
            client: &self.client,
            method: Method::GET,
            url: url.as_str(),
            headers,
            bearer: None,
            origin: &origin,
        };
        let followed = req.send().await.map_err(|e| match e {
            Error::Unreachable { url, message } => Error::Unreachable {
                message: format!(
                    "the Ollama library ({}) cannot be reached, so it cannot be searched: {message}",
                    self.base
                ),
                url,
            },
            other => other,
        })?;
        let final_url = followed.url.clone();
        let bytes = crate::http::read_capped(followed.response, MAX_PAGE, &final_url).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// Parses a page (up to [`MAX_PAGE`] of HTML) on a blocking thread, not the runtime's.
async fn off_runtime<T: Send + 'static>(
    url: &Url,
    parse: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(parse).await {
        Ok(parsed) => parsed.map_err(|message| protocol(url, message)),
        Err(e) => Err(protocol(url, format!("the page could not be read: {e}"))),
    }
}

fn protocol(url: &Url, message: String) -> Error {
    Error::Protocol {
        url: url.to_string(),
        message,
    }
}

/// A parsed page as a flat tree: tl's nodes (document order, so each element's subtree is
/// the range up to its `end`) with parents. Built and walked without recursion, so a page
/// nested a million deep costs memory, never the stack.
struct Page {
    nodes: Vec<PageNode>,
}

struct PageNode {
    /// Tag name (lowercase) and attributes (entities decoded); `None` for text.
    tag: Option<(String, Vec<(String, String)>)>,
    /// Text (entities decoded); empty for elements and comments.
    text: String,
    parent: Option<usize>,
    /// Index of the last node of this one's subtree.
    end: usize,
}

impl Page {
    fn parse(html: &str) -> Page {
        let Ok(dom) = tl::parse(html, tl::ParserOptions::default()) else {
            return Page { nodes: Vec::new() };
        };
        let parser = dom.parser();
        let raw = dom.nodes();
        let mut nodes: Vec<PageNode> = raw
            .iter()
            .enumerate()
            .map(|(i, n)| match n {
                tl::Node::Tag(t) => PageNode {
                    tag: Some((
                        t.name().as_utf8_str().to_ascii_lowercase(),
                        t.attributes()
                            .iter()
                            .map(|(k, v)| {
                                let v = v.unwrap_or_default();
                                (k.to_ascii_lowercase(), decode(&v))
                            })
                            .collect(),
                    )),
                    text: String::new(),
                    parent: None,
                    end: i,
                },
                tl::Node::Raw(b) => PageNode {
                    tag: None,
                    text: decode(&b.as_utf8_str()),
                    parent: None,
                    end: i,
                },
                tl::Node::Comment(_) => PageNode {
                    tag: None,
                    text: String::new(),
                    parent: None,
                    end: i,
                },
            })
            .collect();
        for (i, n) in raw.iter().enumerate() {
            if let tl::Node::Tag(t) = n {
                for h in t.children().top().iter() {
                    let c = h.get_inner() as usize;
                    // Children come after their parent in document order; anything else is
                    // not a tree, and is left unattached rather than trusted.
                    if c > i && c < nodes.len() {
                        nodes[c].parent = Some(i);
                    }
                }
            }
        }
        // Subtree ends, from the last node back: a parent ends where its last child ends.
        for i in (0..nodes.len()).rev() {
            if let Some(p) = nodes[i].parent {
                let end = nodes[i].end;
                if end > nodes[p].end {
                    nodes[p].end = end;
                }
            }
        }
        let _ = parser;
        Page { nodes }
    }

    /// Every node of the page (as the root of a search).
    fn all(&self) -> std::ops::Range<usize> {
        0..self.nodes.len()
    }

    /// The nodes of `i`'s subtree, `i` excluded.
    fn below(&self, i: usize) -> std::ops::Range<usize> {
        i + 1..self.nodes[i].end + 1
    }

    fn attr(&self, i: usize, name: &str) -> Option<&str> {
        let (_, attrs) = self.nodes[i].tag.as_ref()?;
        attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn is(&self, i: usize, tag: &str) -> bool {
        self.nodes[i].tag.as_ref().is_some_and(|(t, _)| t == tag)
    }

    /// Elements in `range` with attribute `name`.
    fn with_attr(&self, range: std::ops::Range<usize>, name: &str) -> Vec<usize> {
        range.filter(|&i| self.attr(i, name).is_some()).collect()
    }

    /// Text of `i`'s subtree, white space runs made one space.
    fn text(&self, i: usize) -> String {
        let mut words: Vec<&str> = Vec::new();
        for j in i..=self.nodes[i].end {
            words.extend(self.nodes[j].text.split_whitespace());
        }
        words.join(" ")
    }

    fn ancestors(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        std::iter::successors(self.nodes[i].parent, |&p| self.nodes[p].parent)
    }

    /// Distinct non-empty texts of the elements in `range` with attribute `name`.
    fn texts(&self, range: std::ops::Range<usize>, name: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in self
            .with_attr(range, name)
            .into_iter()
            .map(|i| self.text(i))
        {
            if !t.is_empty() && !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }

    fn first_text(&self, range: std::ops::Range<usize>, name: &str) -> Option<String> {
        self.with_attr(range, name)
            .into_iter()
            .map(|i| self.text(i))
            .find(|t| !t.is_empty())
    }
}

fn decode(s: &str) -> String {
    // `&nbsp;` is a space here, like any other.
    html_escape::decode_html_entities(s).replace('\u{a0}', " ")
}

/// A listing page (`/search`, `/library`). `Err` only when the page has no listing at all.
pub fn parse_listing(html: &str) -> Result<Vec<LibraryModel>, String> {
    let page = Page::parse(html);
    let items: Vec<usize> = page
        .with_attr(page.all(), "x-test-model")
        .into_iter()
        .filter(|&i| page.is(i, "li"))
        .collect();
    let mut models: Vec<LibraryModel> = Vec::new();
    for &li in &items {
        let inside = page.below(li);
        let href_name = inside
            .clone()
            .filter(|&i| page.is(i, "a"))
            .filter_map(|i| page.attr(i, "href"))
            .find_map(model_in_href);
        // The name the page shows, else the one its link carries.
        let name = page
            .first_text(inside.clone(), "x-test-search-response-title")
            .or_else(|| {
                page.with_attr(inside.clone(), "x-test-model-title")
                    .into_iter()
                    .find_map(|i| page.attr(i, "title").map(str::to_owned))
            })
            .or(href_name);
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            continue;
        };
        if models.iter().any(|m| m.name == name) {
            continue;
        }
        let description = inside
            .clone()
            .filter(|&i| page.is(i, "p"))
            .map(|i| page.text(i))
            .find(|t| !t.is_empty())
            .unwrap_or_default();
        models.push(LibraryModel {
            name,
            description,
            ..header_facts(&page, inside)
        });
    }
    if items.is_empty() && !looks_like_listing(&page) {
        return Err("the page holds no model listing (has the site's layout changed?)".into());
    }
    Ok(models)
}

/// A listing with no result still has its results container.
fn looks_like_listing(page: &Page) -> bool {
    page.all().any(|i| {
        matches!(page.attr(i, "id"), Some("searchresults" | "repo"))
            || page.attr(i, "x-test-repos").is_some()
    })
}

/// `/library/qwen3` → `qwen3`; `/jmorgan/model` → `jmorgan/model`; other links → `None`.
fn model_in_href(href: &str) -> Option<String> {
    let path = href.split(['?', '#']).next()?;
    let rest = path.strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    let name = match parts.as_slice() {
        ["library", model] => (*model).to_owned(),
        [ns, model] if !RESERVED.contains(ns) => format!("{ns}/{model}"),
        _ => return None,
    };
    (!name.contains(':') && !name.is_empty()).then_some(name)
}

/// First path segments of the site's own pages, never a user's namespace.
const RESERVED: &[&str] = &[
    "library", "search", "blog", "download", "public", "signin", "signup", "models", "settings",
];

/// The facts a listing item and a model page show the same way.
fn header_facts(page: &Page, range: std::ops::Range<usize>) -> LibraryModel {
    LibraryModel {
        capabilities: page
            .texts(range.clone(), "x-test-capability")
            .into_iter()
            .map(|c| c.to_ascii_lowercase())
            .collect(),
        sizes: page.texts(range.clone(), "x-test-size"),
        pulls: page
            .first_text(range.clone(), "x-test-pull-count")
            .and_then(|t| count(&t)),
        tag_count: page
            .first_text(range.clone(), "x-test-tag-count")
            .and_then(|t| t.split_whitespace().next()?.replace(',', "").parse().ok()),
        updated: page.first_text(range, "x-test-updated"),
        ..Default::default()
    }
}

/// A model's tags page. `Err` when it lists no tag of `name` at all.
pub fn parse_tags(html: &str, name: &str) -> Result<ModelTags, String> {
    let page = Page::parse(html);
    let summary = page
        .all()
        .find(|&i| page.attr(i, "id") == Some("summary-content"))
        .map(|i| page.text(i));
    let mut model = LibraryModel {
        name: name.to_owned(),
        description: summary.unwrap_or_default(),
        ..header_facts(&page, page.all())
    };
    let prefix = match name.split_once('/') {
        Some(_) => format!("/{name}:"),
        None => format!("/library/{name}:"),
    };
    let tag_of = |i: usize| -> Option<&str> {
        let href = page.attr(i, "href").filter(|_| page.is(i, "a"))?;
        let tag = href.strip_prefix(prefix.as_str())?;
        let tag = tag.split(['?', '#']).next().unwrap_or(tag);
        (!tag.is_empty() && !tag.contains('/')).then_some(tag)
    };
    let mut tags: Vec<LibraryTag> = Vec::new();
    for a in page.all() {
        let Some(tag) = tag_of(a) else { continue };
        if tags.iter().any(|t| t.tag == tag) {
            continue;
        }
        // The row: the nearest ancestor holding links to this tag only, and a size.
        let row = page.ancestors(a).find(|&e| {
            page.below(e).all(|i| tag_of(i).is_none_or(|t| t == tag))
                && page.text(e).split_whitespace().any(|w| size(w).is_some())
        });
        let facts = row.map_or_else(|| page.text(a), |r| page.text(r));
        let is_latest = tag != "latest"
            && row.is_some_and(|r| {
                page.below(r)
                    .any(|i| page.is(i, "span") && page.text(i) == "latest")
            });
        tags.push(tag_facts(tag, facts, is_latest));
    }
    if tags.is_empty() {
        return Err(format!(
            "the page lists no tag of {name} (has the site's layout changed?)"
        ));
    }
    model.tag_count = u32::try_from(tags.len()).ok();
    Ok(ModelTags { model, tags })
}

/// A tag's facts from its row's text: `500a1f067a9f • 5.2GB • 40K context window • Text
/// input • 3 weeks ago` (phone layout) and `5.2GB 40K Text 500a1f067a9f · 3 weeks ago`
/// (desktop) read the same.
fn tag_facts(tag: &str, text: String, is_latest: bool) -> LibraryTag {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == '•' || c == '·')
        .filter(|w| !w.is_empty())
        .collect();
    let digest = words
        .iter()
        .find(|w| {
            w.len() == 12
                && w.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .map(|w| (*w).to_owned());
    let size = words.iter().find_map(|w| size(w));
    let context = words.iter().find_map(|w| context(w));
    let input = ["Text, Image", "Text, Audio", "Text", "Image"]
        .iter()
        .find(|kind| text.contains(*kind))
        .map(|k| (*k).to_owned());
    LibraryTag {
        tag: tag.to_owned(),
        digest,
        size,
        context,
        input,
        is_latest,
    }
}

/// `8.2M` → 8,200,000; `312.4K`, `1,024`, `3B` likewise.
fn count(text: &str) -> Option<u64> {
    let t = text.split_whitespace().next()?.replace(',', "");
    let (num, mult) = match t.chars().last()? {
        'K' | 'k' => (&t[..t.len() - 1], 1e3),
        'M' | 'm' => (&t[..t.len() - 1], 1e6),
        'B' | 'b' => (&t[..t.len() - 1], 1e9),
        _ => (t.as_str(), 1.0),
    };
    let n: f64 = num.parse().ok()?;
    (n.is_finite() && n >= 0.0).then(|| (n * mult).round() as u64)
}

/// `5.2GB` → bytes (decimal units, as the site prints them); `None` for anything else.
fn size(word: &str) -> Option<u64> {
    let (num, mult) = [("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)]
        .iter()
        .find_map(|(unit, m)| word.strip_suffix(unit).map(|n| (n, *m)))?;
    let n: f64 = num.parse().ok()?;
    (n.is_finite() && n >= 0.0).then(|| (n * mult).round() as u64)
}

/// `40K` → 40,960 tokens (the site's K is 1024: `128K` is 131,072); `None` otherwise.
fn context(word: &str) -> Option<u64> {
    let n: u64 = word.strip_suffix('K')?.parse().ok()?;
    n.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_the_site_writes_them() {
        assert_eq!(count("8.2M"), Some(8_200_000));
        assert_eq!(count("312.4K"), Some(312_400));
        assert_eq!(count("1,024"), Some(1024));
        assert_eq!(count("many"), None);
        assert_eq!(size("5.2GB"), Some(5_200_000_000));
        assert_eq!(size("523MB"), Some(523_000_000));
        assert_eq!(size("5.2"), None);
        assert_eq!(context("40K"), Some(40_960));
        assert_eq!(context("256K"), Some(262_144));
        assert_eq!(context("40"), None);
    }

    #[test]
    fn model_links_name_models_and_nothing_else() {
        assert_eq!(model_in_href("/library/qwen3").as_deref(), Some("qwen3"));
        assert_eq!(
            model_in_href("/jmorgan/tiny").as_deref(),
            Some("jmorgan/tiny")
        );
        assert_eq!(model_in_href("/library/qwen3:8b"), None);
        assert_eq!(model_in_href("/library/qwen3/tags"), None);
        assert_eq!(model_in_href("/blog/post"), None);
        assert_eq!(model_in_href("https://github.com/ollama/ollama"), None);
    }

    #[test]
    fn hostile_pages_parse_to_nothing_or_an_error_never_a_panic() {
        let deep = "<div>".repeat(200_000) + "<li x-test-model><a href=\"/library/x:1\">5GB</a>";
        for page in [
            "",
            "<",
            "<li x-test-model>",
            "<html><body><p>hello",
            "\u{0}\u{ffff}",
            deep.as_str(),
        ] {
            let _ = parse_listing(page);
            let _ = parse_tags(page, "x");
        }
        let e = parse_listing("<html><body><p>Just a moment...</p></body></html>").unwrap_err();
        assert!(e.contains("no model listing"), "{e}");
        // An item without a name is skipped, not a model with an empty name.
        let models =
            parse_listing("<div id=searchresults><ul><li x-test-model><p>x</p></li></ul></div>")
                .unwrap();
        assert!(models.is_empty());
    }
}
