//! What the examples share: the backend choice, one-line errors, and the dispatch from a
//! `--backend` value to a generic function over the compiled backends.
#![allow(dead_code)]

use std::process::ExitCode;

use clap::{Parser, ValueEnum};

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

/// Calls `$run::<Autodiff<B>>($args, &Default::default())` for the backend `$backend` names, or
/// returns the not-compiled-in error.
#[macro_export]
macro_rules! on_backend {
    ($backend:expr, $run:ident, $args:expr) => {{
        use burn::backend::Autodiff;
        #[allow(unused_imports)]
        use $crate::shared::Backend;
        match $backend {
            #[cfg(feature = "ndarray")]
            Backend::Ndarray => {
                $run::<Autodiff<burn::backend::NdArray>>($args, &Default::default())
            }
            #[cfg(feature = "flex")]
            Backend::Flex => $run::<Autodiff<burn::backend::Flex>>($args, &Default::default()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => $run::<Autodiff<burn::backend::Wgpu>>($args, &Default::default()),
            #[cfg(feature = "vulkan")]
            Backend::Vulkan => $run::<Autodiff<burn::backend::Vulkan>>($args, &Default::default()),
            #[cfg(feature = "cuda")]
            Backend::Cuda => $run::<Autodiff<burn::backend::Cuda>>($args, &Default::default()),
            #[allow(unreachable_patterns)]
            other => Err(other.not_compiled()),
        }
    }};
}
