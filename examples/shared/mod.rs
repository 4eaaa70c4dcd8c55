//! What the examples share: the backend choice, one-line errors, and the dispatch from a
//! `--backend` value to a generic function over the compiled backends.
#![allow(dead_code)]

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use grokking::{Engine, TrainBackend};

/// A Burn backend, chosen at run time among those compiled in by cargo features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// CPU, ndarray.
    Ndarray,
    /// CPU, Burn's pure-Rust flex backend.
    Flex,
    /// GPU through wgpu (Vulkan, Metal or DirectX, chosen by wgpu).
    Wgpu,
    /// GPU through wgpu's Vulkan backend.
    Vulkan,
    /// NVIDIA GPU through CUDA.
    Cuda,
}

impl Default for Backend {
    fn default() -> Self {
        if cfg!(feature = "flex") {
            Backend::Flex
        } else {
            Backend::Ndarray
        }
    }
}

impl Backend {
    /// The backend's name, as `--backend` spells it and `summary.json` records it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Ndarray => "ndarray",
            Backend::Flex => "flex",
            Backend::Wgpu => "wgpu",
            Backend::Vulkan => "vulkan",
            Backend::Cuda => "cuda",
        }
    }

    /// The error for a backend that is not compiled in.
    pub fn not_compiled(self) -> anyhow::Error {
        anyhow::anyhow!(
            "backend `{0}` is not compiled in; rebuild with `--features {0}`",
            self.name()
        )
    }
}

/// How each training step is computed (`--engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum EngineArg {
    /// The backend's own implementation (`fused`).
    #[default]
    Auto,
    /// The reference: Burn's tensor operations and autodiff on the backend.
    Generic,
    /// The backend's own implementation of the step: host code on ndarray and flex, CubeCL
    /// kernels on wgpu, vulkan and cuda.
    Fused,
}

impl From<EngineArg> for Engine {
    fn from(engine: EngineArg) -> Self {
        match engine {
            EngineArg::Auto => Engine::Auto,
            EngineArg::Generic => Engine::Generic,
            EngineArg::Fused => Engine::Fused,
        }
    }
}

/// Parses the arguments and runs `run`: `--help`/`--version` print and succeed, a bad argument
/// is its first line on stderr and exit code 2, an error from `run` is one `error: ...` line and
/// exit code 1.
pub fn main_with<A: Parser>(run: impl FnOnce(&A) -> anyhow::Result<()>) -> ExitCode {
    let args = match A::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            eprintln!("{}", text.lines().next().unwrap_or("error: bad arguments"));
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Checks that backend `B` runs here (`grokking::device::check`), then calls `run` on its default
/// device: a GPU backend without its driver is one error line, before any output is written.
pub fn on_device<B: TrainBackend, A>(
    backend: Backend,
    args: &A,
    run: impl FnOnce(&A, &B::Device) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let device = Default::default();
    grokking::device::check::<B>(&device)
        .with_context(|| format!("--backend {}", backend.name()))?;
    run(args, &device)
}

/// Calls `$run::<Autodiff<B>>($args, &device)` through [`on_device`] for the backend `$backend`
/// names, or returns the not-compiled-in error.
#[macro_export]
macro_rules! on_backend {
    ($backend:expr, $run:ident, $args:expr) => {{
        use burn::backend::Autodiff;
        #[allow(unused_imports)]
        use $crate::shared::{on_device, Backend};
        match $backend {
            #[cfg(feature = "ndarray")]
            Backend::Ndarray => {
                type B = Autodiff<burn::backend::NdArray>;
                on_device::<B, _>($backend, $args, $run::<B>)
            }
            #[cfg(feature = "flex")]
            Backend::Flex => {
                type B = Autodiff<burn::backend::Flex>;
                on_device::<B, _>($backend, $args, $run::<B>)
            }
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => {
                type B = Autodiff<burn::backend::Wgpu>;
                on_device::<B, _>($backend, $args, $run::<B>)
            }
            #[cfg(feature = "vulkan")]
            Backend::Vulkan => {
                type B = Autodiff<burn::backend::Vulkan>;
                on_device::<B, _>($backend, $args, $run::<B>)
            }
            #[cfg(feature = "cuda")]
            Backend::Cuda => {
                type B = Autodiff<burn::backend::Cuda>;
                on_device::<B, _>($backend, $args, $run::<B>)
            }
            #[allow(unreachable_patterns)]
            other => Err(other.not_compiled()),
        }
    }};
}
