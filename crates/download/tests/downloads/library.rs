//! The Ollama library pages: parsed from saved pages, and fetched from testhub's copy of
//! the site; a site that does not answer is said so.

use download::ollama_library::{Library, parse_listing, parse_tags};
use testhub::library_page;

#[test]
fn a_search_page_gives_each_model_with_its_facts() {
    let models = parse_listing(library_page("search-qwen.html")).unwrap();
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["qwen3", "qwen2.5vl", "qwen3-embedding", "codeqwen"]);
    let q = &models[0];
    assert!(
        q.description.starts_with("Qwen3 is the latest generation"),
        "{q:?}"
    );
    assert_eq!(q.capabilities, ["tools", "thinking"]);
    assert_eq!(
        q.sizes,
        ["0.6b", "1.7b", "4b", "8b", "14b", "30b", "32b", "235b"]
    );
    assert_eq!(q.pulls, Some(8_200_000));
    assert_eq!(q.tag_count, Some(58));
    assert_eq!(q.updated.as_deref(), Some("3 weeks ago"));
    assert_eq!(models[1].capabilities, ["vision"]);
    assert_eq!(models[2].capabilities, ["embedding"]);
    assert_eq!(models[2].pulls, Some(312_400));
    // Entities decoded; no capability is none, not an empty string.
    assert!(
        models[3].description.contains("code data & strong"),
        "{:?}",
        models[3]
    );
    assert!(models[3].capabilities.is_empty());
}

#[test]
fn the_library_page_reads_the_same_way() {
    let models = parse_listing(library_page("library.html")).unwrap();
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["gpt-oss", "llama3.2", "nomic-embed-text"]);
    assert_eq!(
        models[0].description.split_whitespace().next(),
        Some("OpenAI's")
    );
    assert_eq!(models[1].pulls, Some(41_700_000));
    assert!(models[2].sizes.is_empty());
    // A search with no result is an empty list, not an error.
    assert!(
        parse_listing(library_page("search-empty.html"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_tags_page_gives_every_tag_once_with_size_context_and_digest() {
    let page = parse_tags(library_page("tags-qwen3.html"), "qwen3").unwrap();
    assert_eq!(page.model.name, "qwen3");
    assert!(page.model.description.starts_with("Qwen3 is the latest"));
    assert_eq!(page.model.capabilities, ["tools", "thinking"]);
    assert_eq!(page.model.pulls, Some(8_200_000));
    let tags: Vec<&str> = page.tags.iter().map(|t| t.tag.as_str()).collect();
    assert_eq!(
        tags,
        [
            "latest",
            "0.6b",
            "8b",
            "30b-a3b-instruct-2507-q4_K_M",
            "235b"
        ]
    );
    assert_eq!(page.model.tag_count, Some(5));
    let t8 = &page.tags[2];
    assert_eq!(t8.digest.as_deref(), Some("500a1f067a9f"));
    assert_eq!(t8.size, Some(5_200_000_000));
    assert_eq!(t8.context, Some(40 * 1024));
    assert_eq!(t8.input.as_deref(), Some("Text"));
    assert!(t8.is_latest, "the tag latest points to is marked");
    assert!(!page.tags[0].is_latest && !page.tags[1].is_latest);
    assert_eq!(page.tags[1].size, Some(523_000_000));
    assert_eq!(page.tags[4].context, Some(256 * 1024));
    assert_eq!(page.tags[4].size, Some(142_000_000_000));
    // A page of another model's tags lists none of this one's.
    let e = parse_tags(library_page("tags-qwen3.html"), "llama3.2").unwrap_err();
    assert!(e.contains("no tag of llama3.2"), "{e}");
}

#[tokio::test]
async fn the_client_reads_the_site_and_names_what_fails() {
    let hub = testhub::Hub::start().await;
    let lib = Library::new(reqwest::Client::new(), &hub.url).unwrap();
    let found = lib.search("qwen").await.unwrap();
    assert_eq!(found.len(), 4);
    assert!(lib.search("nothing-like-this").await.unwrap().is_empty());
    assert_eq!(lib.list().await.unwrap()[1].name, "llama3.2");
    let tags = lib.tags("qwen3").await.unwrap();
    assert_eq!(tags.tags.len(), 5);
    let e = lib.tags("no-such-model").await.unwrap_err().to_string();
    assert!(e.contains("404"), "{e}");
    assert!(lib.tags("a/b/c").await.is_err());

    // Nothing listens on the port of a dropped server: the error says what cannot be reached.
    let gone = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let lib = Library::new(reqwest::Client::new(), &gone).unwrap();
    let e = lib.search("qwen").await.unwrap_err();
    assert!(matches!(e, download::Error::Unreachable { .. }), "{e:?}");
    assert!(
        e.to_string().contains("the Ollama library") && e.to_string().contains("cannot be reached"),
        "{e}"
    );
}
