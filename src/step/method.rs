//! The parts of a training step that a researcher chooses: the loss, the activation, the
//! gradient filters and the optimiser ([`Method`]). Each member of a stack has its own.
//!
//! The defaults are the notebook's step: softmax cross-entropy, ReLU, no filter, AdamW with
//! β = (0.9, 0.999). The other choices follow the papers' own code:
//! - [`Loss::Stablemax`]: Prieto et al. 2025's `stablemax_cross_entropy`, `s(x) = x + 1` for
//!   `x ≥ 0` and `1 / (1 − x)` below, `−log(s(x_y) / Σ s(x))`, in `f64` on the host;
//! - [`Loss::Mse`]: PyTorch's `mse_loss` against the one-hot label, the mean over rows and
//!   classes;
//! - [`Grokfast::Ema`] and [`Grokfast::Ma`]: Lee et al. 2024's `gradfilter_ema` and
//!   `gradfilter_ma` (ironjr/grokfast): `g ← g + λ·EMA_α(g)`, the EMA starting from the first
//!   gradient, or `g ← g + λ·mean(last w gradients)` once `w` gradients are held;
//! - `orthograd`: Prieto et al.'s `OrthoGrad`, per weight matrix `g ← (g − (w·g / (w·w + 1e-30))
//!   w) · ‖g‖ / (‖g_⊥‖ + 1e-30)`, after the filter;
//! - [`Optimizer::Sgd`]: `torch.optim.SGD` with momentum and Nesterov (its weight decay is
//!   PyTorch's: `g + wd·w`, coupled, where AdamW's is decoupled);
//! - [`Optimizer::Muon`]: Burn 0.21's `Muon` (Jordan et al. 2024): Nesterov momentum, then the
//!   update orthogonalised by five Newton–Schulz steps, its learning rate scaled by the matrix's
//!   shape, and decoupled weight decay.
//! - [`Optimizer::Sgld`]: not an optimiser but a sampler, devinterp 2.0.1's default
//!   (`SGMCMC.sgld`, Lau et al. 2023): Langevin steps around the weights it starts from, for the
//!   local learning coefficient ([`crate::analysis::llc`]).

use serde::{Deserialize, Serialize};

use super::{noise::chain_key, Hyper};
use crate::error::{Error, Result};

/// One member's choices for its step. Defaults are the notebook's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Method {
    /// The loss of a row's logits and label.
    pub loss: Loss,
    /// The hidden layer's activation.
    pub activation: Activation,
    /// The Grokfast filter applied to the gradient after backward, if any.
    pub grokfast: Option<Grokfast>,
    /// Whether ⊥Grad projects each weight matrix's gradient orthogonal to the weights (after the
    /// filter).
    pub orthograd: bool,
    /// The optimiser.
    pub optimizer: Optimizer,
}

/// The loss of a row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Loss {
    /// Softmax cross-entropy (the notebook's).
    #[default]
    CrossEntropy,
    /// StableMax cross-entropy (Prieto et al. 2025).
    Stablemax,
    /// Mean squared error against the one-hot label, averaged over the classes.
    Mse,
}

/// The hidden layer's activation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// `max(x, 0)` (the notebook's).
    #[default]
    Relu,
    /// `x²` (Gromov 2023).
    Square,
}

/// A Grokfast gradient filter (Lee et al. 2024).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "filter", rename_all = "kebab-case")]
pub enum Grokfast {
    /// `gradfilter_ema`: `e ← α·e + (1 − α)·g` (`e` starts as the first gradient), `g ← g + λ·e`.
    Ema {
        /// The EMA's decay α, in [0, 1) (the authors' default 0.98).
        alpha: f64,
        /// The amplification λ (the authors' default 2).
        lambda: f64,
    },
    /// `gradfilter_ma`: once `window` gradients are held, `g ← g + λ·(their mean)`.
    Ma {
        /// Gradients averaged, ≥ 1 (the authors' default 100).
        window: usize,
        /// The amplification λ (the authors' default 5).
        lambda: f64,
    },
}

/// The optimiser of a step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum Optimizer {
    /// AdamW as `torch.optim.AdamW` does it, with decoupled weight decay.
    #[serde(rename = "adamw")]
    AdamW {
        /// First-moment decay β₁, in [0, 1).
        beta1: f64,
        /// Second-moment decay β₂, in [0, 1).
        beta2: f64,
    },
    /// SGD as `torch.optim.SGD` does it (no dampening), with weight decay `g + wd·w`.
    Sgd {
        /// Momentum μ ≥ 0 (0: none).
        momentum: f64,
        /// Nesterov momentum (needs μ > 0).
        nesterov: bool,
    },
    /// Muon as Burn 0.21's `Muon` does it with its defaults, on each weight matrix `W` of
    /// Burn's shape `[d_in, d_out]` (fc1 `[2p, h]`, fc2 `[h, p]`): the Nesterov momentum
    /// `b ← μ·b + g`, `u = μ·b + g` (the first step's `b = g`); `X = u / max(‖u‖_F, 1e-7)`,
    /// transposed when it has more rows than columns, then five Newton–Schulz steps `A = X·Xᵀ`,
    /// `X ← a·X + (b·A + c·A²)·X` with `(a, b, c) = (3.4445, −4.775, 2.0315)`; and
    /// `W ← W·(1 − lr·wd) − lr·√max(1, d_in/d_out) · X`.
    Muon {
        /// Momentum μ ≥ 0 (Burn's default 0.95), always Nesterov's.
        momentum: f64,
    },
    /// Stochastic gradient Langevin dynamics as devinterp 2.0.1's `SGMCMC.sgld` does it, with ε
    /// the member's learning rate, λ its weight decay and `w*` the weights it started from
    /// (kept in the first moments, so a checkpoint holds it): per element, `d = nβ·g + λ·w +
    /// γ·(w − w*)`, `w ← w + (−ε/2)·d`, then `w ← w + √ε·ξ` with `ξ` the standard normal noise of
    /// [`noise`](super::noise) for `(seed, chain, step, weight)`. `g` is the gradient of the
    /// batch's mean loss (after any filter and ⊥Grad).
    Sgld {
        /// The inverse temperature nβ > 0 (devinterp's `default_nbeta`: `m / ln m` for batches of
        /// `m` rows).
        nbeta: f64,
        /// The localisation γ ≥ 0, the pull towards `w*`.
        localization: f64,
        /// The noise's seed.
        seed: u64,
        /// The chain, the noise's second key.
        chain: u32,
    },
}

impl Default for Optimizer {
    fn default() -> Self {
        Optimizer::AdamW {
            beta1: 0.9,
            beta2: 0.999,
        }
    }
}

/// The authors' defaults (ironjr/grokfast): α = 0.98, λ = 2 for the EMA; λ = 5 for the MA.
pub const GROKFAST_EMA_LAMBDA: f64 = 2.0;
/// The MA filter's default λ (ironjr/grokfast).
pub const GROKFAST_MA_LAMBDA: f64 = 5.0;
/// Muon's default momentum (Burn 0.21's `MuonConfig`).
pub const MUON_MOMENTUM: f64 = 0.95;
/// Muon's Newton–Schulz coefficients `(a, b, c)` (Burn 0.21's `MuonConfig`, Jordan et al.'s).
pub const MUON_NS_COEFFICIENTS: (f32, f32, f32) = (3.4445, -4.775, 2.0315);
/// Muon's Newton–Schulz steps (Burn 0.21's default).
pub const MUON_NS_STEPS: usize = 5;
/// The least Frobenius norm Muon divides by (Burn 0.21's default ε).
pub const MUON_EPSILON: f32 = 1e-7;

/// Muon's learning-rate factor for a weight of Burn's shape `[rows, cols]` (Burn 0.21's
/// `AdjustLrFn::Original`): `√max(1, rows / cols)`.
pub fn muon_lr_ratio(rows: usize, cols: usize) -> f64 {
    (rows as f64 / cols as f64).max(1.0).sqrt()
}

/// One SGLD step's factors for one member.
pub(crate) struct Sgld {
    /// `−ε/2`.
    pub(crate) drift: f32,
    /// `√ε`.
    pub(crate) diffusion: f32,
    pub(crate) nbeta: f32,
    pub(crate) weight_decay: f32,
    pub(crate) localization: f32,
    /// The chain's noise key and the step's counter (steps taken before this one).
    pub(crate) key: [u32; 2],
    pub(crate) step: u32,
}

impl Sgld {
    /// The factors of step `step` (counted from 1) of a member of `method` and `hyper` (ε its
    /// learning rate, λ its weight decay), each rounded to `f32` from the `f64` values
    /// devinterp computes in Python (`-0.5 * lr`, `lr ** 0.5`); `None` if its optimiser is not
    /// SGLD.
    pub(crate) fn of(method: &Method, hyper: &Hyper, step: u64) -> Option<Self> {
        let Optimizer::Sgld {
            nbeta,
            localization,
            seed,
            chain,
        } = method.optimizer
        else {
            return None;
        };
        let (drift, diffusion) = Self::langevin(hyper);
        Some(Self {
            drift,
            diffusion,
            nbeta: nbeta as f32,
            weight_decay: hyper.weight_decay as f32,
            localization: localization as f32,
            key: chain_key(seed, chain),
            step: u32::try_from(step - 1).expect("fewer than 2³² SGLD steps"),
        })
    }

    /// `(−ε/2, √ε)` for the learning rate ε of `hyper`, rounded to `f32` from the `f64` values
    /// devinterp computes in Python.
    pub(crate) fn langevin(hyper: &Hyper) -> (f32, f32) {
        ((-0.5 * hyper.lr) as f32, hyper.lr.sqrt() as f32)
    }
}

/// The MA filter's ring of `window` blocks, holding `held` gradients with the oldest in block
/// `oldest`, after one more gradient (Python's `deque(maxlen=window).append`: a full window
/// drops its oldest): `(block of the new gradient, oldest, held)`.
pub(crate) fn ma_push(window: usize, held: usize, oldest: usize) -> (usize, usize, usize) {
    if held < window {
        ((oldest + held) % window, oldest, held + 1)
    } else {
        (oldest, (oldest + 1) % window, held)
    }
}

impl Loss {
    /// Every loss, in the order `--help` lists them.
    pub const ALL: [Loss; 3] = [Loss::CrossEntropy, Loss::Stablemax, Loss::Mse];

    /// The name, as `--loss` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Loss::CrossEntropy => "cross-entropy",
            Loss::Stablemax => "stablemax",
            Loss::Mse => "mse",
        }
    }
}

impl Activation {
    /// Every activation, in the order `--help` lists them.
    pub const ALL: [Activation; 2] = [Activation::Relu, Activation::Square];

    /// The name, as `--activation` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Square => "square",
        }
    }
}

impl Optimizer {
    /// The name, as `--optimizer` spells it: `adamw`, `sgd`, `muon`.
    pub fn name(self) -> &'static str {
        match self {
            Optimizer::AdamW { .. } => "adamw",
            Optimizer::Sgd { .. } => "sgd",
            Optimizer::Muon { .. } => "muon",
            Optimizer::Sgld { .. } => "sgld",
        }
    }
}

macro_rules! named_choice {
    ($type:ty, $field:literal, $reason:literal) => {
        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $type {
            type Err = Error;

            fn from_str(text: &str) -> Result<Self> {
                <$type>::ALL
                    .into_iter()
                    .find(|choice| choice.name() == text)
                    .ok_or(Error::InvalidConfig {
                        field: $field,
                        value: text.to_owned(),
                        reason: $reason,
                    })
            }
        }
    };
}

named_choice!(Loss, "loss", "expected cross-entropy, stablemax or mse");
named_choice!(Activation, "activation", "expected relu or square");

impl Method {
    /// Checks every hyperparameter.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the flag: a Grokfast α outside [0, 1), a window of 0, a
    /// λ that is not finite, a β outside [0, 1), a negative or non-finite momentum, Nesterov
    /// without momentum, SGLD's nβ not finite and positive or γ not finite and non-negative.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, value: f64, reason| {
            Err(Error::InvalidConfig {
                field,
                value: value.to_string(),
                reason,
            })
        };
        let unit = |v: f64| (0.0..1.0).contains(&v);
        match self.grokfast {
            Some(Grokfast::Ema { alpha, lambda }) => {
                if !unit(alpha) {
                    return invalid("grokfast-alpha", alpha, "it must be in [0, 1)");
                }
                if !lambda.is_finite() {
                    return invalid("grokfast-lambda", lambda, "it must be finite");
                }
            }
            Some(Grokfast::Ma { window, lambda }) => {
                if window == 0 {
                    return invalid("grokfast-window", 0.0, "average at least one gradient");
                }
                if !lambda.is_finite() {
                    return invalid("grokfast-lambda", lambda, "it must be finite");
                }
            }
            None => {}
        }
        match self.optimizer {
            Optimizer::AdamW { beta1, beta2 } => {
                if !unit(beta1) {
                    return invalid("beta1", beta1, "it must be in [0, 1)");
                }
                if !unit(beta2) {
                    return invalid("beta2", beta2, "it must be in [0, 1)");
                }
            }
            Optimizer::Muon { momentum } => {
                if !(momentum.is_finite() && momentum >= 0.0) {
                    return invalid("momentum", momentum, "it must be finite and non-negative");
                }
            }
            Optimizer::Sgld {
                nbeta,
                localization,
                ..
            } => {
                if !(nbeta.is_finite() && nbeta > 0.0) {
                    return invalid("llc-nbeta", nbeta, "it must be finite and positive");
                }
                if !(localization.is_finite() && localization >= 0.0) {
                    return invalid(
                        "llc-gamma",
                        localization,
                        "it must be finite and non-negative",
                    );
                }
            }
            Optimizer::Sgd { momentum, nesterov } => {
                if !(momentum.is_finite() && momentum >= 0.0) {
                    return invalid("momentum", momentum, "it must be finite and non-negative");
                }
                if nesterov && momentum == 0.0 {
                    return invalid(
                        "momentum",
                        momentum,
                        "Nesterov momentum needs a momentum > 0",
                    );
                }
            }
        }
        Ok(())
    }

    /// Whether this is the notebook's step (cross-entropy, ReLU, no filter, no ⊥Grad, AdamW
    /// with β = (0.9, 0.999)).
    pub fn is_default(&self) -> bool {
        *self == Method::default()
    }

    /// How many past gradients the filter holds after `step` optimiser steps (the EMA: 1 once
    /// started; the MA: up to its window; none: 0).
    pub fn filter_gradients(&self, step: u64) -> usize {
        let held = usize::try_from(step).unwrap_or(usize::MAX);
        match self.grokfast {
            Some(Grokfast::Ema { .. }) => held.min(1),
            Some(Grokfast::Ma { window, .. }) => held.min(window),
            None => 0,
        }
    }

    /// The most past gradients the filter ever holds.
    pub fn filter_capacity(&self) -> usize {
        self.filter_gradients(u64::MAX)
    }

    /// A short human-readable form, for the report and summaries: `"adamw(0.9, 0.999)"`,
    /// `"stablemax, square, grokfast-ema(0.98, 2), orthograd, sgd(0.9, nesterov)"`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.loss != Loss::default() {
            parts.push(self.loss.name().to_owned());
        }
        if self.activation != Activation::default() {
            parts.push(self.activation.name().to_owned());
        }
        match self.grokfast {
            Some(Grokfast::Ema { alpha, lambda }) => {
                parts.push(format!("grokfast-ema(α {alpha}, λ {lambda})"))
            }
            Some(Grokfast::Ma { window, lambda }) => {
                parts.push(format!("grokfast-ma(window {window}, λ {lambda})"))
            }
            None => {}
        }
        if self.orthograd {
            parts.push("orthograd".to_owned());
        }
        parts.push(match self.optimizer {
            Optimizer::AdamW { beta1, beta2 } => format!("adamw(β {beta1}, {beta2})"),
            Optimizer::Sgd { momentum, nesterov } => format!(
                "sgd(momentum {momentum}{})",
                if nesterov { ", nesterov" } else { "" }
            ),
            Optimizer::Muon { momentum } => format!("muon(momentum {momentum})"),
            Optimizer::Sgld {
                nbeta,
                localization,
                seed,
                chain,
            } => format!("sgld(nβ {nbeta}, γ {localization}, seed {seed}, chain {chain})"),
        });
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_read_from_an_empty_object_and_round_trip() {
        let method: Method = serde_json::from_str("{}").unwrap();
        assert!(method.is_default());
        let custom = Method {
            loss: Loss::Stablemax,
            activation: Activation::Square,
            grokfast: Some(Grokfast::Ma {
                window: 7,
                lambda: 5.0,
            }),
            orthograd: true,
            optimizer: Optimizer::Sgd {
                momentum: 0.8,
                nesterov: true,
            },
        };
        let json = serde_json::to_string(&custom).unwrap();
        assert_eq!(serde_json::from_str::<Method>(&json).unwrap(), custom);
        assert!(json.contains(r#""loss":"stablemax""#), "{json}");
        assert!(json.contains(r#""filter":"ma""#), "{json}");
        assert_eq!(custom.filter_gradients(3), 3);
        assert_eq!(custom.filter_gradients(30), 7);
        assert_eq!(Method::default().describe(), "adamw(β 0.9, 0.999)");
    }

    #[test]
    fn bad_hyperparameters_name_their_flag() {
        let with = |grokfast, optimizer| Method {
            grokfast,
            optimizer,
            ..Method::default()
        };
        let adam = Optimizer::default();
        let cases = [
            (
                with(
                    Some(Grokfast::Ema {
                        alpha: 1.0,
                        lambda: 2.0,
                    }),
                    adam,
                ),
                "grokfast-alpha",
            ),
            (
                with(
                    Some(Grokfast::Ema {
                        alpha: f64::NAN,
                        lambda: 2.0,
                    }),
                    adam,
                ),
                "grokfast-alpha",
            ),
            (
                with(
                    Some(Grokfast::Ma {
                        window: 0,
                        lambda: 5.0,
                    }),
                    adam,
                ),
                "grokfast-window",
            ),
            (
                with(
                    Some(Grokfast::Ma {
                        window: 3,
                        lambda: f64::NAN,
                    }),
                    adam,
                ),
                "grokfast-lambda",
            ),
            (
                with(
                    None,
                    Optimizer::AdamW {
                        beta1: -0.1,
                        beta2: 0.9,
                    },
                ),
                "beta1",
            ),
            (
                with(
                    None,
                    Optimizer::AdamW {
                        beta1: 0.9,
                        beta2: 1.0,
                    },
                ),
                "beta2",
            ),
            (
                with(
                    None,
                    Optimizer::Sgd {
                        momentum: -1.0,
                        nesterov: false,
                    },
                ),
                "momentum",
            ),
            (
                with(
                    None,
                    Optimizer::Sgd {
                        momentum: 0.0,
                        nesterov: true,
                    },
                ),
                "momentum",
            ),
        ];
        for (method, flag) in cases {
            match method.validate() {
                Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, flag, "{method:?}"),
                other => panic!("{method:?}: {other:?}"),
            }
        }
        assert!(with(
            None,
            Optimizer::Sgd {
                momentum: 0.0,
                nesterov: false
            }
        )
        .validate()
        .is_ok());
    }
}
