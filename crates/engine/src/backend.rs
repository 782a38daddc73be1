//! The process-wide llama.cpp backend: initialised once, its log routed into `tracing`, and
//! the compute devices listed for the API.

use std::cell::RefCell;
use std::ffi::{CStr, c_char, c_void};
use std::sync::OnceLock;

use llama_cpp_2::llama_backend::LlamaBackend;
use serde::{Deserialize, Serialize};

/// How llama.cpp places work on NUMA systems (`llama_numa_init`). Fixed at first use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumaStrategy {
    /// No NUMA handling (the default, and the right one on one-socket machines).
    #[default]
    Disabled,
    /// Spread threads over all nodes.
    Distribute,
    /// Keep threads on the node the process started on.
    Isolate,
    /// Use the CPU map numactl gave the process.
    Numactl,
}

/// Options fixed when the backend is first initialised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendOptions {
    pub numa: NumaStrategy,
}

struct Backend {
    llama: LlamaBackend,
    options: BackendOptions,
}

static BACKEND: OnceLock<Backend> = OnceLock::new();

/// Gives the heap memory freed with a model back to the operating system.
///
/// llama.cpp allocates and frees buffers of many megabytes as models load and unload. glibc
/// raises its mmap threshold to the size of each large block freed (up to 32 MiB), so the
/// next load's blocks come from heap arenas, and freed arena memory stays in the process: a
/// server swapping models under `models_max` grew from 500 to 800 MiB in a 20-minute soak
/// (`scripts/bench/soak.sh`) with the same model loaded at both ends. `malloc_trim` returns
/// the free pages of every arena. It runs once per unload, never per token, so glibc keeps
/// its fast reuse for the per-token allocations (a fixed threshold would mmap those).
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the OS; any thread may call it.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Initialise the backend with these options (first call wins; later calls with other options
/// only log a warning, since llama.cpp cannot change them in a running process).
pub fn init(options: BackendOptions) {
    let b = BACKEND.get_or_init(|| {
        install_log_callback();
        let llama = match options.numa {
            NumaStrategy::Disabled => LlamaBackend::init(),
            other => LlamaBackend::init_numa(match other {
                NumaStrategy::Distribute => llama_cpp_2::llama_backend::NumaStrategy::DISTRIBUTE,
                NumaStrategy::Isolate => llama_cpp_2::llama_backend::NumaStrategy::ISOLATE,
                NumaStrategy::Numactl => llama_cpp_2::llama_backend::NumaStrategy::NUMACTL,
                NumaStrategy::Disabled => llama_cpp_2::llama_backend::NumaStrategy::DISABLED,
            }),
        };
        // Only this OnceLock initialises llama-cpp-2's backend, so "already initialised" can
        // only come from another crate in the process doing it first: the backend is usable.
        let llama = llama.unwrap_or(LlamaBackend {});
        Backend { llama, options }
    });
    if b.options != options {
        tracing::warn!(
            wanted = ?options,
            active = ?b.options,
            "llama.cpp backend already initialised with other options; keeping them"
        );
    }
}

/// The backend, initialised with default options if nobody did before.
pub(crate) fn get() -> &'static LlamaBackend {
    if BACKEND.get().is_none() {
        init(BackendOptions::default());
    }
    &BACKEND.get().expect("initialised above").llama
}

/// The options the backend runs with, if it has been initialised.
pub fn options() -> Option<BackendOptions> {
    BACKEND.get().map(|b| b.options)
}

/// Kind of compute device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    Cpu,
    Gpu,
    IntegratedGpu,
    Accelerator,
    Unknown,
}

/// One device llama.cpp can compute on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub index: usize,
    /// e.g. `CPU`, `CUDA0`, `Vulkan0`.
    pub name: String,
    /// e.g. the CPU model, `NVIDIA GeForce RTX 4090`.
    pub description: String,
    /// ggml backend name: `CPU`, `CUDA`, `Metal`...
    pub backend: String,
    pub kind: DeviceKind,
    pub memory_free: u64,
    pub memory_total: u64,
}

/// The devices llama.cpp sees. The CPU is reported with the system's RAM.
pub fn devices() -> Vec<DeviceInfo> {
    let _ = get();
    llama_cpp_2::list_llama_ggml_backend_devices()
        .into_iter()
        .map(|d| {
            use llama_cpp_2::LlamaBackendDeviceType as T;
            let kind = match d.device_type {
                T::Cpu => DeviceKind::Cpu,
                T::Gpu => DeviceKind::Gpu,
                T::IntegratedGpu => DeviceKind::IntegratedGpu,
                T::Accelerator => DeviceKind::Accelerator,
                T::Unknown => DeviceKind::Unknown,
            };
            let mut info = DeviceInfo {
                index: d.index,
                name: d.name,
                description: d.description,
                backend: d.backend,
                kind,
                memory_free: d.memory_free as u64,
                memory_total: d.memory_total as u64,
            };
            if kind == DeviceKind::Cpu {
                if let Some(model) = cpu_model_name() {
                    info.description = model;
                }
                if let Some((total, available)) = system_memory() {
                    info.memory_total = total;
                    info.memory_free = available;
                }
            }
            info
        })
        .collect()
}

/// True when a GPU-like device (discrete, integrated or accelerator with its own memory) exists.
pub fn has_gpu() -> bool {
    devices()
        .iter()
        .any(|d| matches!(d.kind, DeviceKind::Gpu | DeviceKind::IntegratedGpu))
}

/// Number of physical CPU cores (llama-server's default thread count).
pub fn physical_cores() -> u32 {
    u32::try_from(num_cpus::get_physical().max(1)).unwrap_or(1)
}

/// `(MemTotal, MemAvailable)` in bytes from `/proc/meminfo` (Linux); `None` elsewhere.
pub fn system_memory() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    };
    Some((field("MemTotal:")?, field("MemAvailable:")?))
}

fn cpu_model_name() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_string())
}

// ---------------------------------------------------------------------------------------
// Log routing. llama.cpp logs in pieces (a message without '\n' is continued by the next
// call), from whatever thread is working. We assemble lines per thread, send them to
// `tracing` (target `llama.cpp`), and remember the last error line of each thread so that
// a failed load or grammar can quote llama.cpp's own reason.

thread_local! {
    static LINE: RefCell<(i32, String)> = const { RefCell::new((0, String::new())) };
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

const LOG_NONE: i32 = 0;
const LOG_DEBUG: i32 = 1;
const LOG_INFO: i32 = 2;
const LOG_WARN: i32 = 3;
const LOG_ERROR: i32 = 4;
const LOG_CONT: i32 = 5;

fn install_log_callback() {
    // SAFETY: plain C setters; the callback is a static function that needs no user data.
    unsafe {
        llama_cpp_sys_2::llama_log_set(Some(log_callback), std::ptr::null_mut());
        llama_cpp_sys_2::ggml_log_set(Some(log_callback), std::ptr::null_mut());
    }
}

unsafe extern "C" fn log_callback(
    level: llama_cpp_sys_2::ggml_log_level,
    text: *const c_char,
    _: *mut c_void,
) {
    if text.is_null() {
        return;
    }
    // SAFETY: llama.cpp passes a NUL-terminated string valid for the call.
    let bytes = unsafe { CStr::from_ptr(text) }.to_bytes();
    let text = String::from_utf8_lossy(bytes);
    // Never unwind into C: `try_with` fails quietly while a thread is being torn down.
    let _ = LINE.try_with(|cell| {
        let Ok(mut line) = cell.try_borrow_mut() else {
            return;
        };
        #[allow(clippy::unnecessary_cast)]
        let level = level as i32;
        if level != LOG_CONT {
            if !line.1.is_empty() {
                let (lvl, msg) = (line.0, std::mem::take(&mut line.1));
                emit(lvl, &msg);
            }
            line.0 = level;
        }
        line.1.push_str(&text);
        if line.1.ends_with('\n') {
            let (lvl, msg) = (line.0, std::mem::take(&mut line.1));
            emit(lvl, &msg);
        }
    });
}

fn emit(level: i32, msg: &str) {
    let msg = msg.trim_end();
    if msg.is_empty() {
        return;
    }
    match level {
        LOG_ERROR => {
            tracing::error!(target: "llama.cpp", "{msg}");
            let _ = LAST_ERROR.try_with(|e| {
                if let Ok(mut e) = e.try_borrow_mut() {
                    *e = Some(msg.to_string());
                }
            });
        }
        LOG_WARN => tracing::warn!(target: "llama.cpp", "{msg}"),
        LOG_INFO => tracing::debug!(target: "llama.cpp", "{msg}"),
        LOG_DEBUG | LOG_NONE => tracing::trace!(target: "llama.cpp", "{msg}"),
        _ => tracing::debug!(target: "llama.cpp", "{msg}"),
    }
}

/// Forget this thread's last llama.cpp error (call before an operation whose failure you
/// want to explain with [`take_last_error`]).
pub(crate) fn clear_last_error() {
    let _ = LAST_ERROR.try_with(|e| e.borrow_mut().take());
}

/// This thread's last llama.cpp error line since [`clear_last_error`], if any.
pub(crate) fn take_last_error() -> Option<String> {
    LAST_ERROR
        .try_with(|e| e.borrow_mut().take())
        .ok()
        .flatten()
}
