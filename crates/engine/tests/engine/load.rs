//! Load parameters that reach llama.cpp's own parameter struct (tensor_split).

use engine::{EngineError, ModelHost, ModelParams};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tensor_split_is_applied_and_checked() {
    let Some(path) = smollm() else { return };
    // One value per device; on this CPU-only machine it changes nothing, but the load goes
    // through with the pointer set.
    let mp = ModelParams {
        tensor_split: vec![1.0],
        ..ModelParams::new(&path)
    };
    let h = ModelHost::load(mp, ctx(256, 1), |_| {}).expect("load with tensor_split");
    let c = run(&h, greedy(&chatml(FRANCE), 16)).await.unwrap();
    assert!(c.text.contains("Paris"), "{:?}", c.text);
    h.shutdown().await;

    // More values than llama.cpp has device slots: refused before loading.
    let too_long = ModelParams {
        tensor_split: vec![1.0; engine::max_devices() + 1],
        ..ModelParams::new(&path)
    };
    match ModelHost::load(too_long, ctx(256, 1), |_| {}) {
        Err(EngineError::InvalidParameter { name, reason }) => {
            assert_eq!(name, "tensor_split");
            assert!(reason.contains("at most"), "{reason}");
        }
        other => panic!("expected InvalidParameter(tensor_split), got {other:?}"),
    }
    let negative = ModelParams {
        tensor_split: vec![-1.0],
        ..ModelParams::new(&path)
    };
    assert!(matches!(
        ModelHost::load(negative, ctx(256, 1), |_| {}),
        Err(EngineError::InvalidParameter { .. })
    ));
}
