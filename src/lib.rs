//! # grokking
//!
//! Train and interpret the one-hidden-layer MLP that learns modular addition ("grokking"), on
//! any [Burn](https://burn.dev) backend: the origin notebook (Bussmann, "Interpreting Modular
//! Addition in MLPs", 2023) as a library.
//!
//! - [`ModularDataset`]: all p² pairs `(a, b)` labelled `(a + b) mod p`, split by a seeded,
//!   NumPy-compatible shuffle; [`MlpConfig::init_weights`] draws PyTorch's initial weights for a
//!   seed ([`mt19937`]), so a seed starts where the notebook's run with that seed started.
//! - [`Mlp`]: `fc1: 2p -> d_hidden`, ReLU, `fc2: d_hidden -> p`, no biases; weights to and from
//!   the host in PyTorch's orientation as [`MlpWeights`].
//! - [`train()`] / [`Trainer`]: AdamW with the notebook's defaults ([`TrainingConfig`]), metrics per
//!   epoch, an observer to log or stop; [`train::Ensemble`]: K networks as one program.
//! - [`run::Run`]: a run in a folder, as `grok` makes one: config, metrics, checkpoints,
//!   snapshots, resume, then the summary, analysis, progress measures and report;
//!   [`run::analyze_saved`]: the same analysis of a saved model.
//! - [`step`]: the training step and evaluation of K stacked networks as one backend operation
//!   ([`StepBackend`]): host code on the CPU backends, CubeCL kernels on the GPU ones, Burn's
//!   tensor operations and autodiff as the reference.
//! - [`analysis`]: on host copies of the weights, in `f64`: one cosine per weight vector by FFT
//!   ([`analysis::fourier`]), replacing neurons by their cosines, accuracies
//!   ([`analysis::evaluate`]), progress measures along training, and more.
//! - [`io`]: atomic writes, safetensors, Burn records, checkpoints, snapshots.
//! - [`device`]: the backends by name ([`device::BackendKind`]), chosen at run time, and whether
//!   one can run on this machine ([`device::check`]), as an error instead of a panic.
//!
//! # Quick start
//! ```
//! use burn::backend::{Autodiff, NdArray};
//! use grokking::{analysis::{self, fourier}, Control, MlpConfig, Split, TrainingConfig};
//!
//! // A small modulus so the example runs in a moment; the defaults are the notebook's p = 113.
//! let config = TrainingConfig::new()
//!     .with_model(MlpConfig::new().with_p(11).with_d_hidden(32))
//!     .with_epochs(5);
//! let trained = grokking::train::<Autodiff<NdArray>>(&config, &Default::default(), |m: &grokking::EpochMetrics| {
//!     println!("epoch {} val_acc {:.3}", m.epoch, m.val_acc);
//!     Control::Continue
//! })?;
//! let weights = trained.model.weights(); // host copy, PyTorch orientation
//! let fits = fourier::fit_neurons(&weights);
//! assert_eq!(fits.len(), 32);
//! let all: Vec<usize> = (0..32).collect();
//! let replaced = analysis::replacement_accuracy(&weights, &fits, &all, &trained.data);
//! assert!((0.0..=1.0).contains(&replaced.full));
//! let full = analysis::accuracy(&weights, &trained.data, Split::Full);
//! assert!((0.0..=1.0).contains(&full));
//! # Ok::<(), grokking::Error>(())
//! ```
//!
//! # Backends
//! Library code is generic over `B: Backend` ([`TrainBackend`] for training). Cargo features
//! pick what is compiled: `ndarray` and `flex` (CPU, default), `wgpu`, `vulkan`, `cuda`. The
//! crate re-exports the Burn it is built on ([`burn`]), so a dependent names the backends
//! (`grokking::burn::backend::Flex`) without pinning Burn's version itself.
#![warn(missing_docs)]

pub use burn;

pub mod analysis;
pub mod data;
pub mod device;
pub mod error;
pub mod io;
pub mod memory;
pub mod model;
pub mod mt19937;
pub mod operation;
mod panics;
pub mod report;
pub mod run;
pub mod step;
pub mod sweep;
pub mod train;

pub use data::{ModularDataset, Split, SplitTensors};
pub use error::{Error, Result};
pub use model::{Activations, Mlp, MlpConfig, MlpWeights};
pub use operation::{CustomOperation, Operation};
pub use step::{Method, OptimizerState, StepBackend};
pub use train::checkpoint::TrainerState;
pub use train::{
    train, Control, Engine, Epoch, EpochMetrics, EpochObserver, History, TrainBackend, Trained,
    Trainer, TrainingConfig,
};
