//! The session service without a model: rows, branches, rollback, export and import. Sends
//! run against the real test models in the server's tests (`tests/api/sessions.rs`).

use super::*;
use store::StoredMessage;

fn sessions() -> Arc<Sessions> {
    let store = Arc::new(Store::open_in_memory().unwrap());
    Sessions::new(store, config::SessionsConfig::default(), true).unwrap()
}

/// A tree: q1 → a1 → q2 → {a2, a2b (active)}.
async fn with_tree(s: &Sessions) -> (Session, Vec<i64>) {
    let session = s
        .create(NewSession {
            model: Some("m".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let add = |parent: Option<i64>, role: &str, text: &str, active: bool| {
        let m = StoredMessage {
            session_id: session.id.clone(),
            parent_id: parent,
            role: role.into(),
            content: text.into(),
            ..Default::default()
        };
        s.store.add_message(&m, active).unwrap().id
    };
    let q1 = add(None, "user", "q1", true);
    let a1 = add(Some(q1), "assistant", "a1", true);
    let q2 = add(Some(a1), "user", "q2", true);
    let a2 = add(Some(q2), "assistant", "a2", false);
    let a2b = add(Some(q2), "assistant", "a2b", true);
    (session, vec![q1, a1, q2, a2, a2b])
}

#[tokio::test]
async fn history_shows_the_active_branch_another_branch_or_the_tree() {
    let s = sessions();
    let (session, ids) = with_tree(&s).await;
    let h = s.history(&session.id, View::Active).await.unwrap();
    let texts: Vec<_> = h.messages.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(texts, ["q1", "a1", "q2", "a2b"]);
    let h = s.history(&session.id, View::Branch(ids[3])).await.unwrap();
    assert_eq!(h.messages.last().unwrap().content, "a2");
    assert_eq!(s.history(&session.id, View::Tree).await.unwrap().messages.len(), 5);
    let err = s.history(&session.id, View::Branch(9999)).await.unwrap_err();
    assert!(err.to_string().contains("message 9999"), "{err}");
    let err = s.history("nope", View::Active).await.unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::NotFound);
    // Switching branches.
    let p = s
        .patch(
            &session.id,
            SessionPatch {
                active_leaf: Some(ids[3]),
                title: Some("renamed".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((p.active_leaf, p.title.as_str()), (Some(ids[3]), "renamed"));
}

#[tokio::test]
async fn rollback_drops_the_last_messages_of_the_active_branch() {
    let s = sessions();
    let (session, ids) = with_tree(&s).await;
    let dropped = s.rollback(&session.id, 2).await.unwrap();
    assert_eq!(dropped, vec![ids[2], ids[4]]);
    let h = s.history(&session.id, View::Tree).await.unwrap();
    // q2 went, and both its answers with it.
    assert_eq!(h.messages.len(), 2);
    assert_eq!(h.session.active_leaf, Some(ids[1]));
    let err = s.rollback(&session.id, 3).await.unwrap_err();
    assert!(err.to_string().contains("holds 2 messages"), "{err}");
    assert!(s.rollback(&session.id, 0).await.is_err());
}

#[tokio::test]
async fn an_export_imports_as_the_same_tree() {
    let s = sessions();
    let (session, _) = with_tree(&s).await;
    let export = s.export_json(&session.id).await.unwrap();
    let text = serde_json::to_string(&export).unwrap();
    let back: transfer::Export = serde_json::from_str(&text).unwrap();
    let imported = s.import(back).await.unwrap();
    assert_ne!(imported.id, session.id);
    let again = s.export_json(&imported.id).await.unwrap();
    assert_eq!(shape(&export), shape(&again));
    let md = s.export_markdown(&imported.id).await.unwrap();
    assert!(md.contains("## User\n\nq2\n\n## Assistant\n\na2b"), "{md}");
}

/// The tree with ids replaced by positions.
fn shape(e: &transfer::Export) -> Vec<(Option<usize>, String, String)> {
    let pos = |id: i64| e.messages.iter().position(|m| m.id == id);
    let mut v: Vec<_> = e
        .messages
        .iter()
        .map(|m| (m.parent_id.and_then(pos), m.role.clone(), m.content.clone()))
        .collect();
    v.push((e.session.active_leaf.and_then(pos), "leaf".into(), String::new()));
    v
}

#[tokio::test]
async fn bad_imports_and_settings_are_refused_before_anything_is_stored() {
    let s = sessions();
    let (session, _) = with_tree(&s).await;
    let mut export = s.export_json(&session.id).await.unwrap();
    export.messages.swap(0, 1);
    let err = s.import(export).await.unwrap_err();
    assert!(err.to_string().contains("must come before"), "{err}");
    assert_eq!(s.list(None, None, None).await.unwrap().total, 1);
    let err = s
        .create(NewSession {
            params: SessionParams {
                top_p: Some(7.0),
                ..Default::default()
            },
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("top_p"), "{err}");
    s.set_config(config::SessionsConfig {
        max_sessions: 1,
        ..Default::default()
    });
    let err = s.create(NewSession::default()).await.unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::Conflict);
    assert!(err.to_string().contains("sessions.max_sessions"), "{err}");
}

#[tokio::test]
async fn one_send_at_a_time_holds_a_session() {
    let s = sessions();
    let (session, _) = with_tree(&s).await;
    let claim = s.claim(&session.id).unwrap();
    // A second send, a rollback or a branch change waits for the first send to be running.
    assert!(matches!(s.claim(&session.id), Err(ServiceError::Conflict(_))));
    assert!(matches!(s.ensure_idle(&session.id), Err(ServiceError::Conflict(_))));
    assert!(matches!(
        s.rollback(&session.id, 1).await,
        Err(ServiceError::Conflict(_))
    ));
    // Another session is free.
    let other = s.create(NewSession::default()).await.unwrap();
    drop(s.claim(&other.id).unwrap());
    drop(claim);
    s.claim(&session.id).unwrap();
}
