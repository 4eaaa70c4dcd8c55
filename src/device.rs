//! The backends this build can train on, chosen at run time ([`BackendKind`], [`on_backend`]),
//! and whether one can run on this machine ([`check`]).
//!
//! Library code is generic over Burn's `Backend`; a program picks one by name (`--backend
//! flex`). [`on_backend`] turns the name into the type, once, inside this crate: the programs
//! that call it (and the crate's own [`Run::start_on`](crate::run::Run::start_on) and
//! [`sweep::run_sweep_on`](crate::sweep::run_sweep_on)) then share one compiled copy of the
//! training stack per backend instead of building their own.

use std::{any::TypeId, fmt, str::FromStr};

use burn::{
    backend::Autodiff,
    tensor::{backend::Backend, Tensor},
};

use crate::{
    error::{Error, Result},
    panics::catch_panics,
    train::TrainBackend,
};

/// A Burn backend, by name; those compiled in (cargo features) can be trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// CPU, ndarray (feature `ndarray`).
    Ndarray,
    /// CPU, Burn's pure-Rust flex backend (feature `flex`).
    Flex,
    /// GPU through wgpu: Vulkan, Metal or DirectX, chosen by wgpu (feature `wgpu`).
    Wgpu,
    /// GPU through wgpu's Vulkan backend (feature `vulkan`).
    Vulkan,
    /// NVIDIA GPU through CUDA (feature `cuda`).
    Cuda,
}

impl BackendKind {
    /// Every backend, compiled in or not, in the order `--help` lists them.
    pub const ALL: [BackendKind; 5] = [
        BackendKind::Ndarray,
        BackendKind::Flex,
        BackendKind::Wgpu,
        BackendKind::Vulkan,
        BackendKind::Cuda,
    ];

    /// The name, as `--backend` spells it, the cargo feature is called and `summary.json`
    /// records it.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Ndarray => "ndarray",
            BackendKind::Flex => "flex",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Vulkan => "vulkan",
            BackendKind::Cuda => "cuda",
        }
    }

    /// One line on what it is (for `--help`).
    pub fn description(self) -> &'static str {
        match self {
            BackendKind::Ndarray => "CPU, ndarray",
            BackendKind::Flex => "CPU, Burn's pure-Rust flex backend",
            BackendKind::Wgpu => "GPU through wgpu (Vulkan, Metal or DirectX, chosen by wgpu)",
            BackendKind::Vulkan => "GPU through wgpu's Vulkan backend",
            BackendKind::Cuda => "NVIDIA GPU through CUDA",
        }
    }

    /// Whether this build has it (its cargo feature is on).
    pub fn is_compiled(self) -> bool {
        match self {
            BackendKind::Ndarray => cfg!(feature = "ndarray"),
            BackendKind::Flex => cfg!(feature = "flex"),
            BackendKind::Wgpu => cfg!(feature = "wgpu"),
            BackendKind::Vulkan => cfg!(feature = "vulkan"),
            BackendKind::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// Whether it runs on the CPU (ndarray, flex).
    pub fn is_cpu(self) -> bool {
        matches!(self, BackendKind::Ndarray | BackendKind::Flex)
    }

    /// The compiled backend `B` is (with or without [`Autodiff`]); `None` for a backend this
    /// crate does not name.
    pub fn of<B: Backend>() -> Option<BackendKind> {
        fn is<B: Backend, X: Backend>() -> bool {
            let id = TypeId::of::<B>();
            id == TypeId::of::<X>() || id == TypeId::of::<Autodiff<X>>()
        }
        #[cfg(feature = "ndarray")]
        if is::<B, burn::backend::NdArray>() {
            return Some(BackendKind::Ndarray);
        }
        #[cfg(feature = "flex")]
        if is::<B, burn::backend::Flex>() {
            return Some(BackendKind::Flex);
        }
        #[cfg(feature = "wgpu")]
        if is::<B, burn::backend::Wgpu>() {
            return Some(BackendKind::Wgpu);
        }
        #[cfg(feature = "vulkan")]
        if is::<B, burn::backend::Vulkan>() {
            return Some(BackendKind::Vulkan);
        }
        #[cfg(feature = "cuda")]
        if is::<B, burn::backend::Cuda>() {
            return Some(BackendKind::Cuda);
        }
        None
    }
}

/// The name `summary.json` records for backend `B`: [`BackendKind::name`], or Burn's own name
/// for a backend this crate does not name.
pub fn backend_name<B: Backend>(device: &B::Device) -> String {
    BackendKind::of::<B>().map_or_else(|| B::name(device), |kind| kind.name().to_owned())
}

impl Default for BackendKind {
    /// flex where it is compiled in, else ndarray.
    fn default() -> Self {
        if cfg!(feature = "flex") || !cfg!(feature = "ndarray") {
            BackendKind::Flex
        } else {
            BackendKind::Ndarray
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = Error;

    /// One of [`BackendKind::name`]'s names.
    fn from_str(text: &str) -> Result<Self> {
        BackendKind::ALL
            .into_iter()
            .find(|kind| kind.name() == text)
            .ok_or(Error::InvalidConfig {
                field: "backend",
                value: text.to_owned(),
                reason: "expected ndarray, flex, wgpu, vulkan or cuda",
            })
    }
}

/// Work to run on a training backend chosen at run time ([`on_backend`]).
pub trait BackendJob {
    /// What the work gives back.
    type Output;

    /// Does the work on backend `B` (with autodiff) and its `device`.
    ///
    /// # Errors
    /// The work's own.
    fn run<B: TrainBackend>(self, device: &B::Device) -> Result<Self::Output>;
}

/// Runs `job` on `backend` with autodiff, on its default device, after [`check`]ing that the
/// backend runs on this machine.
///
/// # Errors
/// [`Error::NotCompiled`] for a backend this build lacks; [`Error::Device`] for one that cannot
/// run here (a GPU backend without its driver); the job's own errors.
///
/// # Example
/// ```
/// use grokking::{device::{on_backend, BackendJob, BackendKind}, TrainBackend, TrainingConfig};
///
/// struct Epochs;
/// impl BackendJob for Epochs {
///     type Output = usize;
///     fn run<B: TrainBackend>(self, _device: &B::Device) -> grokking::Result<usize> {
///         Ok(TrainingConfig::new().epochs)
///     }
/// }
/// assert_eq!(on_backend(BackendKind::Flex, Epochs)?, 2000);
/// # Ok::<(), grokking::Error>(())
/// ```
pub fn on_backend<J: BackendJob>(backend: BackendKind, job: J) -> Result<J::Output> {
    fn checked<B: TrainBackend, J: BackendJob>(job: J) -> Result<J::Output> {
        let device = B::Device::default();
        check::<B>(&device)?;
        job.run::<B>(&device)
    }
    match backend {
        #[cfg(feature = "ndarray")]
        BackendKind::Ndarray => checked::<Autodiff<burn::backend::NdArray>, J>(job),
        #[cfg(feature = "flex")]
        BackendKind::Flex => checked::<Autodiff<burn::backend::Flex>, J>(job),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => checked::<Autodiff<burn::backend::Wgpu>, J>(job),
        #[cfg(feature = "vulkan")]
        BackendKind::Vulkan => checked::<Autodiff<burn::backend::Vulkan>, J>(job),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => checked::<Autodiff<burn::backend::Cuda>, J>(job),
        #[allow(unreachable_patterns)]
        other => Err(Error::NotCompiled {
            backend: other.name(),
        }),
    }
}

/// The most characters of a backend's own failure message that an error keeps.
const MAX_REASON: usize = 240;

/// Where the first clause of a backend's message ends: its messages run on into library search
/// lists and debug dumps.
const CLAUSE_ENDS: [&str; 3] = [". ", " - ", ": "];

/// Checks that backend `B` runs on `device` by writing one value and reading it back.
///
/// A GPU backend on a machine without its driver (no CUDA library, no Vulkan adapter) does not
/// return an error in Burn 0.21: its device thread panics on first use. Call this before any other
/// work on a backend the user chose, to get an error instead of a panic and a backtrace.
///
/// # Errors
/// [`Error::Device`] naming the backend ([`backend_name`]), with the first clause of its own
/// failure message.
///
/// # Example
/// ```
/// use burn::backend::Flex;
/// grokking::device::check::<Flex>(&Default::default())?;
/// # Ok::<(), grokking::Error>(())
/// ```
pub fn check<B: Backend>(device: &B::Device) -> Result<()> {
    let round_trip = catch_panics(|| {
        Tensor::<B, 1>::from_floats([1.5], device)
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
    });
    let reason = match round_trip {
        Ok(Ok(values)) if values == [1.5] => return Ok(()),
        Ok(Ok(values)) => format!("1.5 written to the device was read back as {values:?}"),
        Ok(Err(e)) => format!("cannot read a tensor back: {e:?}"),
        Err(message) => first_clause(&message),
    };
    Err(Error::Device {
        backend: backend_name::<B>(device),
        reason,
    })
}

/// The first clause of `text` (up to the first of [`CLAUSE_ENDS`] or line break), at most
/// [`MAX_REASON`] characters of it.
fn first_clause(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let end = CLAUSE_ENDS
        .iter()
        .filter_map(|end| line.find(end))
        .min()
        .unwrap_or(line.len());
    let clause = &line[..end];
    match clause.char_indices().nth(MAX_REASON) {
        Some((cut, _)) => format!("{}…", &clause[..cut]),
        None => clause.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_first_clause_cut_short() {
        // The messages wgpu and cudarc panic with on a machine without a GPU.
        assert_eq!(
            first_clause("No possible adapter available for backend. Falling back: NotFound {..}"),
            "No possible adapter available for backend"
        );
        assert_eq!(
            first_clause(
                "Unable to dynamically load the \"cuda\" shared library - searched for [..]"
            ),
            "Unable to dynamically load the \"cuda\" shared library"
        );
        assert_eq!(first_clause("no driver\nstack backtrace"), "no driver");
        let long = "x".repeat(1000);
        assert_eq!(first_clause(&long).chars().count(), MAX_REASON + 1);
        assert!(first_clause(&long).ends_with('…'));
    }
}
