//! The Ollama registry: a manifest and its layers pulled and verified into a store the
//! catalog reads; unknown models and corrupt blobs.

use crate::*;
use download::ollama::{LayerKind, Name, Registry, pull_plan};

const TEMPLATE: &[u8] = b"{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n<|im_start|>assistant\n";

fn layers(model: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("application/vnd.ollama.image.model", model.to_vec()),
        ("application/vnd.ollama.image.template", TEMPLATE.to_vec()),
        (
            "application/vnd.ollama.image.params",
            br#"{"stop":["<|im_end|>"],"temperature":0.6}"#.to_vec(),
        ),
        (
            "application/vnd.ollama.image.system",
            b"You are tiny.".to_vec(),
        ),
        ("application/vnd.ollama.image.license", b"MIT".to_vec()),
        (
            "application/vnd.ollama.image.projector",
            gguf_model("proj", 1),
        ),
    ]
}

fn name(env: &Env, model: &str) -> Name {
    let host = env.hub.url.strip_prefix("http://").unwrap();
    Name::parse(&format!("{host}/library/{model}:latest"), true).unwrap()
}

fn registry() -> Registry {
    Registry::new(client(&ClientOptions::default()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pulled_model_lands_verified_in_a_store_the_catalog_reads() {
    let env = Env::new().await;
    let model = gguf_model("tiny", 15);
    let raw = env
        .hub
        .add_ollama_model("library", "tiny", "latest", &layers(&model));
    let name = name(&env, "tiny");
    let fetched = registry().manifest(&name).await.unwrap();
    assert_eq!(fetched.raw, raw);
    let kinds: Vec<LayerKind> = fetched.manifest.layers.iter().map(|l| l.kind()).collect();
    assert_eq!(
        kinds,
        [
            LayerKind::Model,
            LayerKind::Template,
            LayerKind::Params,
            LayerKind::System,
            LayerKind::License,
            LayerKind::Projector
        ]
    );

    let store = env.dir.path().join("ollama");
    let plan = pull_plan(&name, &fetched, &store, &env.partial()).unwrap();
    assert_eq!(plan.files.len(), 7, "config and six layers");
    let q = queue(4, Duration::from_secs(60));
    let id = q.add(plan);
    let s = completed(&q, id).await;
    assert_completed(&s);
    for layer in std::iter::once(&fetched.manifest.config).chain(&fetched.manifest.layers) {
        let path = catalog::ollama::blob_path(&store, &layer.digest).unwrap();
        assert_eq!(format!("sha256:{}", sha(&path)), layer.digest);
    }
    let manifest = store.join(format!("manifests/{}/library/tiny/latest", name.host));
    assert_eq!(std::fs::read(&manifest).unwrap(), raw);

    let report = catalog::ollama::scan(&store);
    assert_eq!(report.skipped.len(), 0, "{:?}", report.skipped);
    assert_eq!(report.models.len(), 1);
    let m = &report.models[0];
    assert_eq!(m.id, format!("{}/library/tiny:latest", name.host));
    assert_eq!(std::fs::read(&m.path).unwrap(), model);
    assert!(m.mmproj.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_blob_fails_the_pull_and_no_manifest_is_written() {
    let env = Env::new().await;
    let model = gguf_model("tiny", 15);
    env.hub
        .add_ollama_model("library", "bad", "latest", &layers(&model));
    let name = name(&env, "bad");
    let fetched = registry().manifest(&name).await.unwrap();
    // The model blob is served cut short and then in full from a second request, but
    // with its last byte changed: the digest check must catch it.
    let sha = testhub::sha256_hex(&model);
    env.hub.set_blob_fault(
        &sha,
        testhub::Fault {
            cut_at: Some(model.len() as u64 / 2),
            ..Default::default()
        },
    );
    env.hub.corrupt_blob(&sha);
    let store = env.dir.path().join("ollama");
    let q = queue(4, Duration::from_secs(60));
    let id = q.add(pull_plan(&name, &fetched, &store, &env.partial()).unwrap());
    let s = completed(&q, id).await;
    match &s.state {
        State::Failed { reason } => assert!(reason.contains("checksum mismatch"), "{reason}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert!(
        !store.join("manifests").exists(),
        "a manifest names a corrupt blob"
    );
    assert!(
        catalog::ollama::blob_path(&store, &format!("sha256:{sha}")).is_some_and(|p| !p.exists())
    );
    assert!(catalog::ollama::scan(&store).models.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_model_is_explained() {
    let env = Env::new().await;
    let e = registry()
        .manifest(&name(&env, "nothing"))
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("nothing:latest was not found") && text.contains("MANIFEST_UNKNOWN"),
        "{text}"
    );
}

/// A queue and a registry client sharing one token cache, as the service builds them.
fn authorized(tokens: &download::http::Tokens) -> (Queue, Registry) {
    let http = client(&ClientOptions::default()).unwrap();
    let q = Queue::new(
        http.clone(),
        QueueOptions {
            max_concurrent: 4,
            transfer: TransferOptions {
                tokens: tokens.clone(),
                ..options()
            },
        },
    );
    (q, Registry::with_tokens(http, tokens.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_wants_a_token_gets_one_per_scope_and_only_it_sees_it() {
    let env = Env::new().await;
    let model = gguf_model("tiny", 15);
    env.hub
        .add_ollama_model("library", "tiny", "latest", &layers(&model));
    env.hub.require_registry_auth(true);
    let name = name(&env, "tiny");

    // A request without a token is challenged.
    let plain = reqwest::Client::new()
        .get(name.manifest_url())
        .header("accept", download::ollama::MANIFEST_V2)
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 401);
    let challenge = plain.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer realm=")
            && challenge.contains("scope=\"repository:library/tiny:pull\""),
        "{challenge}"
    );
    assert_eq!(env.hub.token_requests(), 0);

    let tokens = download::http::Tokens::default();
    let (q, registry) = authorized(&tokens);
    let fetched = registry.manifest(&name).await.unwrap();
    let store = env.dir.path().join("ollama");
    let id = q.add(pull_plan(&name, &fetched, &store, &env.partial()).unwrap());
    assert_completed(&completed(&q, id).await);
    // One challenge and one token for the manifest and all seven blobs; the blobs'
    // redirects reach the CDN, which refuses any Authorization: the token stayed with
    // the registry.
    assert_eq!(
        (env.hub.challenges(), env.hub.token_requests()),
        (2, 1),
        "the first refusal above, then one challenge for the whole pull"
    );
    assert_eq!(catalog::ollama::scan(&store).models.len(), 1);

    // An expired token is refused once, and a new one fetched.
    env.hub.expire_tokens();
    registry.manifest(&name).await.unwrap();
    assert_eq!(env.hub.token_requests(), 2);
}
