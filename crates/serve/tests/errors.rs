//! The server's error policy for libtorch: a tensor operation libtorch rejects (here a projection
//! whose weight has the wrong shape) fails the model-thread work with an error that names the
//! operation's shapes, instead of a panic that would take the model thread down.

mod common;

use std::sync::{Arc, RwLock};

use common::*;
use modrl_model::{Device, Kind};
use modrl_moderation::prompt::Variant;
use modrl_moderation::score::PolicyPrompts;
use modrl_serve::engine::{Engine, EngineConfig};
use modrl_serve::metrics::Metrics;

#[test]
fn a_bad_shape_in_the_model_thread_is_an_error_naming_the_shapes() {
    let (mut model, tok) = modrl_model::load(&tiny_dir(), Device::Cpu, Kind::Float).unwrap();
    // Half of q_proj's input columns: the first forward pass cannot multiply [.., 64] by [32, ..].
    let q = &mut model.layers[0].self_attn.q_proj;
    q.weight = q.weight.narrow(1, 0, 32).contiguous();
    let prompts =
        PolicyPrompts::new(policy("hate-speech"), &tok, Variant::Standard, false).unwrap();
    let r = Engine::new(
        model,
        Arc::new(tok),
        Arc::new(vec![prompts]),
        "tiny".into(),
        None,
        EngineConfig::default(),
        Arc::new(Metrics::new()),
        Arc::new(RwLock::new(vec![])),
    );
    let e = format!("{:#}", r.err().expect("the broken model was accepted"));
    assert!(e.contains("libtorch rejected a tensor operation"), "{e}");
    assert!(e.contains("64") && e.contains("32"), "no shapes in: {e}");
    assert!(!e.contains("Exception raised from"), "{e}");
    // The place is our projection, not tch's generated wrapper that unwrapped libtorch's error.
    assert!(e.contains("modrl_model::llama"), "{e}");
    eprintln!("{e}");
}
