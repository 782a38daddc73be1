//! The hub API: search with paging and sort orders, model info, the GGUF listing, and
//! explained refusals.

use crate::*;
use download::Error;
use download::hf::{MirrorPolicy, SearchQuery, Sort};
use download::transfer::{Progress, fetch};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_pages_through_the_link_header_in_each_sort_order() {
    let env = Env::new().await;
    let meta = |downloads, likes, day: u32| RepoMeta {
        downloads,
        likes,
        last_modified: format!("2025-03-{day:02}T00:00:00.000Z"),
        ..RepoMeta::default()
    };
    let g = || vec![("m.gguf", gguf_model("m", 15))];
    env.hub.add_repo("a/tiny-popular", meta(900, 1, 1), &g());
    env.hub.add_repo("b/tiny-liked", meta(10, 99, 2), &g());
    env.hub.add_repo("c/tiny-new", meta(20, 2, 28), &g());
    // Not GGUF: the filter leaves it out.
    env.hub.add_repo(
        "d/tiny-safetensors",
        meta(5000, 5000, 30),
        &[("model.safetensors", vec![0; 8])],
    );
    let hf = env.hf(None, Duration::from_secs(30));

    let query = |sort| SearchQuery {
        text: "tiny".into(),
        sort,
        limit: 2,
    };
    let first = hf.search(&query(Sort::Downloads)).await.unwrap();
    let ids: Vec<&str> = first.models.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["a/tiny-popular", "org/tiny-GGUF"]);
    assert!(first.models[0].tags.iter().any(|t| t == "gguf"));
    let second = hf
        .search_page(first.next.as_deref().unwrap())
        .await
        .unwrap();
    let ids: Vec<&str> = second.models.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["c/tiny-new", "b/tiny-liked"]);
    assert_eq!(second.next, None);

    let liked = hf.search(&query(Sort::Likes)).await.unwrap();
    assert_eq!(liked.models[0].id, "b/tiny-liked");
    let updated = hf.search(&query(Sort::Updated)).await.unwrap();
    assert_eq!(updated.models[0].id, "c/tiny-new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_info_and_the_gguf_listing_across_tree_pages() {
    let env = Env::new().await;
    // Two entries a page: the listing must follow the Link header to see every file.
    env.hub.set_tree_page(2);
    let hf = env.hf(None, Duration::from_secs(30));

    let info = hf.model_info(REPO).await.unwrap();
    assert_eq!(info.id, REPO);
    assert_eq!(info.sha.as_deref(), Some(env.hub.commit(REPO).as_str()));
    assert_eq!(
        (info.downloads, info.likes, info.gated.as_deref()),
        (500, 7, None)
    );
    assert_eq!(info.license().as_deref(), Some("apache-2.0"));
    assert_eq!(info.siblings.len(), 5);

    let models = hf.gguf_models(REPO, "main").await.unwrap();
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["Q8_0/tiny-Q8_0", "mmproj-tiny-f16.gguf", Q4]);
    let split = &models[0];
    assert_eq!(split.parts.len(), 2);
    assert_eq!(split.missing_parts, 0);
    assert_eq!(split.quantization.as_deref(), Some("Q8_0"));
    assert!(models[1].mmproj);
    assert_eq!(models[1].quantization.as_deref(), Some("F16"));
    let q4 = &models[2];
    assert_eq!(q4.quantization.as_deref(), Some("Q4_K_M"));
    assert_eq!(q4.size, env.q4.len() as u64);
    assert_eq!(
        q4.parts[0].sha256.as_deref(),
        Some(testhub::sha256_hex(&env.q4).as_str())
    );
}

async fn pull_error(env: &Env, token: Option<&str>, repo: &str, file: &str) -> Error {
    let hf = env.hf(token, Duration::from_secs(30));
    let remote = download::hf::RemoteFile {
        path: file.into(),
        size: env.q4.len() as u64,
        sha256: None,
    };
    let spec = hf
        .file_spec(repo, "main", &remote, &env.models(), &env.partial())
        .unwrap();
    fetch(
        &reqwest_client(),
        &spec,
        &options(),
        &Progress::default(),
        &CancellationToken::new(),
    )
    .await
    .unwrap_err()
}

fn reqwest_client() -> reqwest::Client {
    download::http::client(&download::http::ClientOptions::default()).unwrap()
}

fn status_of(e: &Error) -> (u16, String) {
    match e {
        Error::Status {
            status, message, ..
        } => (*status, message.clone()),
        other => panic!("expected an HTTP status error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gated_missing_and_absent_files_are_explained() {
    let env = Env::new().await;
    env.hub.add_repo(
        "corp/gated-GGUF",
        RepoMeta {
            gated: true,
            ..RepoMeta::default()
        },
        &[(Q4, env.q4.clone())],
    );
    env.hub.grant("corp/gated-GGUF", "hf_granted");

    let (status, message) = status_of(&pull_error(&env, None, "corp/gated-GGUF", Q4).await);
    assert_eq!(status, 401);
    assert!(
        message.contains("gated") && message.contains("HF_TOKEN"),
        "{message}"
    );

    let e = pull_error(&env, Some("hf_other"), "corp/gated-GGUF", Q4).await;
    let (status, message) = status_of(&e);
    assert_eq!(status, 403);
    assert!(message.contains("not been granted access"), "{message}");

    let (status, message) = status_of(&pull_error(&env, None, "corp/missing", Q4).await);
    assert_eq!(status, 404);
    assert!(
        message.contains("repository corp/missing was not found"),
        "{message}"
    );

    let (status, message) = status_of(&pull_error(&env, None, REPO, "nope.gguf").await);
    assert_eq!(status, 404);
    assert!(
        message.contains("nope.gguf is not in org/tiny-GGUF"),
        "{message}"
    );

    // The granted token gets the file (and is not sent on to the CDN, which would refuse).
    let hf = env.hf(Some("hf_granted"), Duration::from_secs(30));
    let task = env.task(&hf, "corp/gated-GGUF", Q4).await;
    let outcome = fetch(
        &reqwest_client(),
        &task.files[0],
        &options(),
        &Progress::default(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(matches!(
        outcome,
        download::transfer::Outcome::Completed { .. }
    ));
    assert_eq!(std::fs::read(&task.files[0].dest).unwrap(), env.q4);
}

/// An endpoint where nothing listens: bound, then closed, so connecting is refused.
fn silent_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

fn with_mirror(main: &str, mirror: &str, policy: MirrorPolicy) -> download::hf::Hub {
    let http = client(&ClientOptions::default()).unwrap();
    // A token for the main endpoint, which the mirror must never see.
    download::hf::Hub::new(http, main, Some("hf_main_only".into()))
        .unwrap()
        .with_mirror(mirror, policy)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_turns_to_the_mirror_when_the_hub_does_not_answer() {
    let env = Env::new().await;
    let main = silent_endpoint();
    let hf = with_mirror(&main, &env.hub.url, MirrorPolicy::Auto);
    assert_eq!(hf.endpoint(), format!("{main}/"));

    // The listing comes from the mirror, and the client stays there.
    let found = hf.search(&SearchQuery::default()).await.unwrap();
    assert!(found.models.iter().any(|m| m.id == REPO));
    assert_eq!(hf.endpoint(), format!("{}/", env.hub.url));

    // A file's spec names both; the transfer finds the hub silent and says so.
    let task = env.task(&hf, REPO, Q4).await;
    let spec = &task.files[0];
    assert!(spec.url.starts_with(&main), "{}", spec.url);
    assert!(
        spec.mirror_url
            .as_deref()
            .is_some_and(|u| u.starts_with(&env.hub.url))
    );
    let progress = Progress::default();
    let http = client(&ClientOptions::default()).unwrap();
    fetch(
        &http,
        spec,
        &options(),
        &progress,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(sha(&spec.dest), testhub::sha256_hex(&env.q4));
    let log = progress.log().join("\n");
    assert!(
        log.contains("no answer") && log.contains("downloading from the mirror"),
        "{log}"
    );
    assert_eq!(progress.fetched(), env.q4.len() as u64);
    assert_eq!(
        env.hub.authorized_requests(),
        0,
        "the token reached the mirror"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_even_an_error_is_the_hubs_word_and_the_mirror_is_not_asked() {
    let env = Env::new().await;
    // The main hub answers but lacks the repository; the mirror has it.
    let main = Hub::start().await;
    let hf = with_mirror(&main.url, &env.hub.url, MirrorPolicy::Auto);
    let e = hf.model_info(REPO).await.unwrap_err();
    assert!(matches!(e, Error::Status { status: 404, .. }), "{e}");
    assert_eq!(hf.endpoint(), format!("{}/", main.url));

    // `always` goes to the mirror from the start, with no second URL to fall back on.
    let hf = with_mirror(&main.url, &env.hub.url, MirrorPolicy::Always);
    assert_eq!(hf.model_info(REPO).await.unwrap().id, REPO);
    let task = env.task(&hf, REPO, Q4).await;
    assert!(task.files[0].url.starts_with(&env.hub.url));
    assert_eq!(task.files[0].mirror_url, None);
    assert_eq!(task.files[0].bearer, None);
    assert_eq!(
        env.hub.authorized_requests(),
        0,
        "the token reached the mirror"
    );
    // The main endpoint did get it.
    assert!(main.authorized_requests() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_hub_without_a_mirror_is_explained_as_no_answer() {
    let hf = HfClient::new(
        client(&ClientOptions::default()).unwrap(),
        &silent_endpoint(),
        None,
    )
    .unwrap();
    let e = hf.model_info(REPO).await.unwrap_err();
    assert!(matches!(e, Error::Unreachable { .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_never_goes_to_a_page_on_another_origin() {
    let env = Env::new().await;
    let elsewhere = testhub::Hub::start().await;
    let hf = env.hf(Some("hf_secret"), Duration::from_secs(30));
    // A next-page link (or a page URL a caller passes) on another server.
    let page = hf
        .search_page(&format!("{}/api/models?search=tiny", elsewhere.url))
        .await
        .unwrap();
    assert!(page.models.is_empty());
    assert_eq!(
        elsewhere.authorized_requests(),
        0,
        "the token left its origin"
    );
    // On the hub's own origin it is sent.
    hf.search_page(&format!("{}/api/models?search=tiny", env.hub.url))
        .await
        .unwrap();
    assert!(env.hub.authorized_requests() > 0);
}
