//! The few places where we go past `llama-cpp-2` to llama.cpp's C API (through
//! `llama-cpp-sys-2`, the same build): loading a model with parameters the wrapper has no
//! setter for (`tensor_split`), and the raw model / context pointers that calls such as
//! `llama_set_adapters_lora` with several adapters need. The pointers come from accessors
//! that our patched copy of `llama-cpp-2` adds (`vendor/llama-cpp-2/PATCH.md`); nothing here
//! depends on the crate's private layout.

use std::ffi::{CString, c_void};
use std::path::Path;
use std::ptr::NonNull;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_sys_2 as sys;

use crate::params::{ModelParams, SplitMode};

/// The raw model pointer, for the few calls llama-cpp-2 does not wrap.
pub(crate) fn raw_model(model: &LlamaModel) -> *mut sys::llama_model {
    model.as_ptr()
}

/// Most devices llama.cpp can split a model over (the length `tensor_split` may have).
pub fn max_devices() -> usize {
    // SAFETY: a constant getter.
    unsafe { sys::llama_max_devices() }
}

/// Load a model with llama.cpp's own parameter struct, so that every field can be set
/// (llama-cpp-2 0.1.160's `LlamaModelParams` cannot set `tensor_split`). `progress` gets the
/// load fraction; returning false aborts the load. `None` when llama.cpp refuses the file
/// (its reason is in its log).
pub(crate) fn load_model(
    path: &Path,
    mp: &ModelParams,
    n_gpu_layers: u32,
    mut progress: impl FnMut(f32) -> bool,
) -> Result<Option<LlamaModel>, String> {
    let cpath = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| "the model path contains a NUL byte".to_string())?;

    // llama.cpp reads one value per device from `tensor_split`, up to llama_max_devices():
    // pad with zeros. The Vec lives until the load returns.
    let split: Vec<f32> = if mp.tensor_split.is_empty() {
        Vec::new()
    } else {
        let mut v = vec![0.0f32; max_devices().max(mp.tensor_split.len())];
        v[..mp.tensor_split.len()].copy_from_slice(&mp.tensor_split);
        v
    };

    unsafe extern "C" fn trampoline(p: f32, user: *mut c_void) -> bool {
        // SAFETY: `user` is the `&mut dyn FnMut` below, alive for the whole load.
        let f = unsafe { &mut *user.cast::<&mut dyn FnMut(f32) -> bool>() };
        // Never unwind into C.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(p))).unwrap_or(false)
    }
    let mut cb: &mut dyn FnMut(f32) -> bool = &mut progress;

    // SAFETY: plain C default getter.
    let mut params = unsafe { sys::llama_model_default_params() };
    params.n_gpu_layers = i32::try_from(n_gpu_layers).unwrap_or(i32::MAX);
    params.main_gpu = i32::try_from(mp.main_gpu).unwrap_or(0);
    params.split_mode = match mp.split_mode {
        SplitMode::None => sys::LLAMA_SPLIT_MODE_NONE,
        SplitMode::Layer => sys::LLAMA_SPLIT_MODE_LAYER,
        SplitMode::Row => sys::LLAMA_SPLIT_MODE_ROW,
    };
    params.load_mode = match (mp.use_mmap, mp.use_mlock) {
        (false, false) => sys::LLAMA_LOAD_MODE_NONE,
        (true, false) => sys::LLAMA_LOAD_MODE_MMAP,
        (false, true) => sys::LLAMA_LOAD_MODE_MLOCK,
        (true, true) => sys::LLAMA_LOAD_MODE_MMAP_MLOCK,
    };
    if !split.is_empty() {
        params.tensor_split = split.as_ptr();
    }
    params.progress_callback = Some(trampoline);
    params.progress_callback_user_data = std::ptr::from_mut(&mut cb).cast::<c_void>();

    // SAFETY: valid NUL-terminated path; `params` points only at `split` and `cb`, both
    // alive until this call returns.
    let ptr = unsafe { sys::llama_model_load_from_file(cpath.as_ptr(), params) };
    drop(split);
    // SAFETY: null or a model just loaded that nothing else owns; `LlamaModel` frees it on
    // drop, as if llama-cpp-2 had loaded it.
    Ok(unsafe { LlamaModel::from_raw(ptr) })
}

/// The raw context pointer of a context llama-cpp-2 created, through the accessor that our
/// patched copy adds (`vendor/llama-cpp-2/PATCH.md`).
pub(crate) fn raw_context(ctx: &LlamaContext<'_>) -> Option<NonNull<sys::llama_context>> {
    NonNull::new(ctx.as_ptr())
}

/// The model a raw context belongs to.
pub(crate) fn context_model(ctx: NonNull<sys::llama_context>) -> *const sys::llama_model {
    // SAFETY: a live context.
    unsafe { sys::llama_get_model(ctx.as_ptr()) }
}

/// A raw context checked to belong to `model` (adapters of one model must never be set on
/// another model's context).
pub(crate) fn checked_raw_context(
    ctx: &LlamaContext<'_>,
    model: &LlamaModel,
) -> Option<NonNull<sys::llama_context>> {
    let raw = raw_context(ctx)?;
    (context_model(raw) == raw_model(model).cast_const()).then_some(raw)
}
