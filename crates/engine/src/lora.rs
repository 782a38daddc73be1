//! LoRA adapters: loaded with the model, applied per batch with the scales of the requests
//! in it (llama-server's multi-LoRA behaviour).
//!
//! A LoRA *configuration* is one scale per loaded adapter. The global one is set at load
//! and by [`crate::ModelHandle::set_lora_scales`]; a request may bring its own. Slots whose
//! configurations differ are never decoded in the same batch, and a slot's cached prompt
//! is only reused by a request with the configuration it was computed under.

use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;

use llama_cpp_2::model::LlamaModel;
use llama_cpp_sys_2 as sys;
use serde::{Deserialize, Serialize};

use crate::backend;
use crate::error::EngineError;
use crate::params::LoraSpec;

/// A loaded adapter and its global scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraAdapterInfo {
    /// Its position in `ModelParams::lora`.
    pub id: usize,
    pub path: PathBuf,
    pub scale: f32,
}

/// The scale of one adapter, by id.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoraScale {
    pub id: usize,
    pub scale: f32,
}

/// One scale per loaded adapter (compared by value).
pub(crate) type LoraConfig = Arc<[f32]>;

/// A full configuration from a list of scales, as llama-server's `construct_lora_list`:
/// listed adapters get their scale (the last one wins for a repeated id), the others 0.
pub(crate) fn build_config(
    n_adapters: usize,
    scales: &[LoraScale],
) -> Result<Vec<f32>, EngineError> {
    let mut out = vec![0.0f32; n_adapters];
    for s in scales {
        if !s.scale.is_finite() {
            return Err(EngineError::invalid(
                "lora",
                format!("the scale of adapter {} must be finite", s.id),
            ));
        }
        let Some(slot) = out.get_mut(s.id) else {
            return Err(EngineError::invalid(
                "lora",
                if n_adapters == 0 {
                    format!("no LoRA adapter has id {} (the model has none)", s.id)
                } else {
                    format!(
                        "no LoRA adapter has id {} (the model has {n_adapters}: 0..{n_adapters})",
                        s.id
                    )
                },
            ));
        };
        *slot = s.scale;
    }
    Ok(out)
}

/// Checks a request's scales can do without a model (finite values).
pub(crate) fn validate_scales(scales: &[LoraScale]) -> Result<(), EngineError> {
    if let Some(s) = scales.iter().find(|s| !s.scale.is_finite()) {
        return Err(EngineError::invalid(
            "lora",
            format!("the scale of adapter {} must be finite", s.id),
        ));
    }
    Ok(())
}

/// Look at an adapter file before llama.cpp does: it must be a GGUF LoRA adapter made for
/// this architecture.
pub(crate) fn check_adapter_file(path: &Path, arch: &str) -> Result<(), EngineError> {
    let bad = |reason: String| EngineError::InvalidAdapter {
        path: path.to_path_buf(),
        reason,
    };
    let file = match crate::estimate::read_gguf(path) {
        Ok(f) => f,
        Err(EngineError::ModelNotFound(_)) => return Err(bad("no such file".into())),
        Err(EngineError::NotGguf { reason, .. }) => {
            return Err(bad(format!("not a valid GGUF file: {reason}")));
        }
        Err(e) => return Err(bad(e.to_string())),
    };
    let general_type = file.get_str("general.type").unwrap_or("");
    if general_type != "adapter" {
        return Err(bad(format!(
            "not an adapter (general.type is '{general_type}', expected 'adapter')"
        )));
    }
    let adapter_type = file.get_str("adapter.type").unwrap_or("");
    if adapter_type != "lora" {
        return Err(bad(format!(
            "not a LoRA adapter (adapter.type is '{adapter_type}', expected 'lora')"
        )));
    }
    let adapter_arch = file.architecture().unwrap_or("");
    if adapter_arch != arch {
        return Err(bad(format!(
            "made for architecture '{adapter_arch}', but the model is '{arch}'"
        )));
    }
    Ok(())
}

/// The adapters of one model. They live as long as the model (llama.cpp frees them with it).
pub(crate) struct Adapters {
    list: Vec<(NonNull<sys::llama_adapter_lora>, PathBuf)>,
    global: LoraConfig,
}

impl Adapters {
    /// Load every adapter into the model (on the host thread, before any context).
    pub fn load(model: &LlamaModel, specs: &[LoraSpec]) -> Result<Self, EngineError> {
        let mut list = Vec::with_capacity(specs.len());
        for spec in specs {
            let bad = |reason: String| EngineError::InvalidAdapter {
                path: spec.path.clone(),
                reason,
            };
            let cpath = std::ffi::CString::new(spec.path.as_os_str().as_encoded_bytes())
                .map_err(|_| bad("the path contains a NUL byte".into()))?;
            backend::clear_last_error();
            // SAFETY: a live model (mutated only on this thread, before contexts exist) and
            // a NUL-terminated path. llama.cpp catches its own exceptions and returns NULL.
            let ptr = unsafe {
                sys::llama_adapter_lora_init(crate::raw::raw_model(model), cpath.as_ptr())
            };
            let Some(ptr) = NonNull::new(ptr) else {
                let reason = backend::take_last_error()
                    .map(|m| {
                        m.trim_start_matches("llama_adapter_lora_init_from_file_ptr: ")
                            .to_string()
                    })
                    .unwrap_or_else(|| "llama.cpp could not load it".into());
                return Err(bad(reason));
            };
            list.push((ptr, spec.path.clone()));
        }
        let global: Vec<f32> = specs.iter().map(|s| s.scale).collect();
        Ok(Adapters {
            list,
            global: global.into(),
        })
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn global(&self) -> &LoraConfig {
        &self.global
    }

    pub fn infos(&self) -> Vec<LoraAdapterInfo> {
        self.list
            .iter()
            .zip(self.global.iter())
            .enumerate()
            .map(|(id, ((_, path), &scale))| LoraAdapterInfo {
                id,
                path: path.clone(),
                scale,
            })
            .collect()
    }

    /// Replace the global scales (unlisted adapters get 0, as llama-server's
    /// `POST /lora-adapters`).
    pub fn set_global(&mut self, scales: &[LoraScale]) -> Result<(), EngineError> {
        self.global = build_config(self.len(), scales)?.into();
        Ok(())
    }

    /// Make `cfg` the context's adapters (llama.cpp skips zero scales and does nothing if
    /// they are already set).
    pub fn apply(&self, ctx: NonNull<sys::llama_context>, cfg: &[f32]) -> Result<(), EngineError> {
        let (mut ptrs, mut scales): (Vec<*mut sys::llama_adapter_lora>, Vec<f32>) = self
            .list
            .iter()
            .zip(cfg)
            .filter(|(_, s)| **s != 0.0)
            .map(|((p, _), &s)| (p.as_ptr(), s))
            .unzip();
        let (p, s) = if ptrs.is_empty() {
            (std::ptr::null_mut(), std::ptr::null_mut())
        } else {
            (ptrs.as_mut_ptr(), scales.as_mut_ptr())
        };
        // SAFETY: a live context of the model these adapters belong to; the arrays hold
        // `ptrs.len()` entries (or are NULL with a count of 0).
        let rc = unsafe { sys::llama_set_adapters_lora(ctx.as_ptr(), p, ptrs.len(), s) };
        if rc != 0 {
            return Err(EngineError::Decode(format!(
                "llama.cpp could not set the LoRA adapters (error {rc})"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(id: usize, scale: f32) -> LoraScale {
        LoraScale { id, scale }
    }

    #[test]
    fn configs_list_every_adapter_and_zero_the_unnamed() {
        assert_eq!(build_config(3, &[]).unwrap(), [0.0, 0.0, 0.0]);
        assert_eq!(build_config(3, &[s(1, 0.5)]).unwrap(), [0.0, 0.5, 0.0]);
        // The last value for an id wins (llama-server keeps a map).
        assert_eq!(
            build_config(2, &[s(0, 1.0), s(0, -2.0)]).unwrap(),
            [-2.0, 0.0]
        );
        assert!(build_config(0, &[]).unwrap().is_empty());
    }

    #[test]
    fn unknown_ids_and_non_finite_scales_are_refused() {
        let field = |r: Result<Vec<f32>, EngineError>| match r {
            Err(EngineError::InvalidParameter { name, reason }) => {
                assert_eq!(name, "lora");
                reason
            }
            other => panic!("expected InvalidParameter(lora), got {other:?}"),
        };
        assert!(field(build_config(2, &[s(2, 1.0)])).contains("id 2"));
        assert!(field(build_config(0, &[s(0, 1.0)])).contains("has none"));
        assert!(field(build_config(2, &[s(0, f32::NAN)])).contains("finite"));
        assert!(field(build_config(2, &[s(0, f32::INFINITY)])).contains("finite"));
        assert!(validate_scales(&[s(9, f32::NAN)]).is_err());
        assert!(validate_scales(&[s(9, 2.0)]).is_ok());
    }

    #[test]
    fn serde_shapes() {
        let v: Vec<LoraScale> = serde_json::from_str(r#"[{"id": 1, "scale": 0.5}]"#).unwrap();
        assert_eq!(v, [s(1, 0.5)]);
        let i = LoraAdapterInfo {
            id: 0,
            path: "/a.gguf".into(),
            scale: 1.0,
        };
        let back: LoraAdapterInfo =
            serde_json::from_str(&serde_json::to_string(&i).unwrap()).unwrap();
        assert_eq!(back, i);
    }
}
