//! The notebook's network: `fc1: 2p -> d_hidden`, ReLU, `fc2: d_hidden -> p`, no biases.
//!
//! For an input pair `(a, b)` with one-hot encoding `x` (ones at columns `a` and `p + b`):
//! `pre = x · W1`, `post = relu(pre)`, `logits = post · W2`.
//!
//! # Weight layout
//! Burn's [`Linear`] stores its weight as `[d_input, d_output]`: `fc1.weight` is `[2p, d_hidden]`
//! and `fc2.weight` is `[d_hidden, p]`, the transposes of PyTorch's `fc1.weight [d_hidden, 2p]` and
//! `fc2.weight [p, d_hidden]`. [`MlpWeights`] is the host-side form in PyTorch's orientation. The
//! crossings between the two, each a `transpose` (which moves values, never rounds them):
//! [`Mlp::weights`] and [`Mlp::from_weights`] for a model; the stacks of
//! [`step`](crate::step) (`StackSetup::stacked` and the `stack_weights`/`stack_optimizer` read-backs,
//! which keep every member in Burn's layout); and the Burn record reader
//! ([`io::record`](crate::io::record)), which reads Burn's layout from a file.
//!
//! Because a one-hot row has exactly two ones, `x · W1` is the sum of two rows of `W1`:
//! [`Mlp::forward_pairs`] computes it as a gather, which is what training uses. [`Mlp::forward`]
//! keeps the notebook's one-hot product; both give the same logits.

use burn::{
    config::Config,
    module::{Module, Param},
    nn::{Linear, LinearConfig},
    tensor::{activation::relu, backend::Backend, Int, Tensor, TensorData},
};

use crate::{
    data::check_modulus,
    error::{self, Error},
    mt19937::Mt19937,
};

/// The network's size: modulus `p` (inputs `2p`, outputs `p`) and hidden width `d_hidden`.
#[derive(Config, Debug, PartialEq, Eq)]
pub struct MlpConfig {
    /// The modulus: inputs are `2p` one-hot columns, outputs `p` logits.
    #[config(default = 113)]
    pub p: usize,
    /// Number of hidden ReLU neurons.
    #[config(default = 100)]
    pub d_hidden: usize,
}

/// One-hidden-layer ReLU network without biases. See the [module docs](self).
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// Input layer, weight `[2p, d_hidden]` (Burn's layout).
    pub fc1: Linear<B>,
    /// Output layer, weight `[d_hidden, p]` (Burn's layout).
    pub fc2: Linear<B>,
}

/// The logits with the hidden activations that produced them.
#[derive(Debug, Clone)]
pub struct Activations<B: Backend> {
    /// `[n, p]`: output logits.
    pub logits: Tensor<B, 2>,
    /// `[n, d_hidden]`: hidden activations before the ReLU.
    pub pre: Tensor<B, 2>,
    /// `[n, d_hidden]`: hidden activations after the ReLU.
    pub post: Tensor<B, 2>,
}

/// Host copy of a model's weights in PyTorch's orientation, the form analysis and interop use.
#[derive(Debug, Clone, PartialEq)]
pub struct MlpWeights {
    p: usize,
    d_hidden: usize,
    /// Row-major `[d_hidden, 2p]` (PyTorch's `fc1.weight`).
    fc1: Vec<f32>,
    /// Row-major `[p, d_hidden]` (PyTorch's `fc2.weight`).
    fc2: Vec<f32>,
}

impl MlpConfig {
    /// Checks that the configuration describes a network.
    ///
    /// # Errors
    /// [`Error::InvalidModulus`] for a bad `p`, [`Error::InvalidConfig`] for `d_hidden == 0`.
    pub fn validate(&self) -> error::Result<()> {
        check_modulus(self.p)?;
        if self.d_hidden == 0 {
            return Err(Error::InvalidConfig {
                field: "hidden",
                value: "0".into(),
                reason: "the hidden layer needs at least one neuron",
            });
        }
        Ok(())
    }

    /// The initial weights the origin notebook gets from `torch.manual_seed(seed)` followed by
    /// `nn.Linear(2p, d_hidden, bias=False)` and `nn.Linear(d_hidden, p, bias=False)`, bit for bit:
    /// PyTorch's default initialisation (every weight uniform in `±1/sqrt(fan_in)`, from
    /// `kaiming_uniform_(a = √5)`), drawn from PyTorch's CPU generator ([`Mt19937`]), fc1 first.
    /// Computed on the host, so the same seed gives the same weights on every backend and in
    /// every thread. PyTorch keeps the low 32 bits of a seed, and so does this.
    ///
    /// # Panics
    /// If the configuration is invalid (see [`MlpConfig::validate`]).
    pub fn init_weights(&self, seed: u64) -> MlpWeights {
        self.validate().expect("invalid MlpConfig");
        let (p, h) = (self.p, self.d_hidden);
        let mut rng = Mt19937::from_u32(seed as u32);
        let mut uniform = |n: usize, fan_in: usize| -> Vec<f32> {
            // torch.nn.init.kaiming_uniform_'s bound, in the same f64 operations as Python's.
            let a = 5f64.sqrt();
            let gain = (2.0 / (1.0 + a * a)).sqrt();
            let bound = 3f64.sqrt() * (gain / (fan_in as f64).sqrt());
            let (low, high) = (-bound as f32, bound as f32);
            (0..n).map(|_| rng.uniform_f32(low, high)).collect()
        };
        let fc1 = uniform(h * 2 * p, 2 * p);
        let fc2 = uniform(p * h, h);
        MlpWeights::new(p, h, fc1, fc2).expect("lengths match by construction")
    }

    /// Builds a network with the weights of [`MlpConfig::init_weights`] on `device`.
    ///
    /// # Panics
    /// If the configuration is invalid (see [`MlpConfig::validate`]).
    pub fn init<B: Backend>(&self, seed: u64, device: &B::Device) -> Mlp<B> {
        Mlp::from_weights(&self.init_weights(seed), device)
    }
}

impl<B: Backend> Mlp<B> {
    /// The modulus `p`.
    pub fn p(&self) -> usize {
        self.fc2.weight.shape().dims::<2>()[1]
    }

    /// The hidden width.
    pub fn d_hidden(&self) -> usize {
        self.fc1.weight.shape().dims::<2>()[1]
    }

    /// The configuration this network has.
    pub fn config(&self) -> MlpConfig {
        MlpConfig::new()
            .with_p(self.p())
            .with_d_hidden(self.d_hidden())
    }

    /// Logits for one-hot inputs, the notebook's `fc2(relu(fc1(x)))`.
    ///
    /// # Shapes
    /// `x: [n, 2p]` -> `[n, p]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward_one_hot_activations(x).logits
    }

    /// Logits, `pre` and `post` for one-hot inputs (the notebook's `(x, pre_relu, post_relu)`).
    ///
    /// # Shapes
    /// `x: [n, 2p]`; see [`Activations`].
    pub fn forward_one_hot_activations(&self, x: Tensor<B, 2>) -> Activations<B> {
        let [_, width] = x.dims();
        assert_eq!(width, 2 * self.p(), "one-hot input must have 2p columns");
        self.head(self.fc1.forward(x))
    }

    /// Logits for index inputs: fc1 as the sum of rows `a` and `p + b` of its weight.
    ///
    /// # Shapes
    /// `pairs: [n, 2]` holding `(a, p + b)` -> `[n, p]`.
    pub fn forward_pairs(&self, pairs: Tensor<B, 2, Int>) -> Tensor<B, 2> {
        self.forward_pairs_activations(pairs).logits
    }

    /// Logits, `pre` and `post` for index inputs.
    ///
    /// # Shapes
    /// `pairs: [n, 2]` holding `(a, p + b)`; see [`Activations`].
    pub fn forward_pairs_activations(&self, pairs: Tensor<B, 2, Int>) -> Activations<B> {
        let [n, two] = pairs.dims();
        assert_eq!(two, 2, "pairs must have 2 columns (a, p + b)");
        let w1 = self.fc1.weight.val(); // [2p, d_hidden]
        let a = pairs.clone().slice([0..n, 0..1]).reshape([n]);
        let b = pairs.slice([0..n, 1..2]).reshape([n]);
        let pre = w1.clone().select(0, a) + w1.select(0, b); // [n, d_hidden]
        self.head(pre)
    }

    fn head(&self, pre: Tensor<B, 2>) -> Activations<B> {
        let post = relu(pre.clone()); // [n, d_hidden]
        let logits = self.fc2.forward(post.clone()); // [n, p]
        Activations { logits, pre, post }
    }

    /// Copies the weights to the host in PyTorch's orientation.
    pub fn weights(&self) -> MlpWeights {
        let (p, h) = (self.p(), self.d_hidden());
        let w1 = to_vec(self.fc1.weight.val()); // [2p, h]
        let w2 = to_vec(self.fc2.weight.val()); // [h, p]
        MlpWeights::new(p, h, transpose(&w1, 2 * p, h), transpose(&w2, h, p))
            .expect("a model's own weights have consistent shapes")
    }

    /// Builds a network holding `weights` (PyTorch's orientation) on `device`.
    pub fn from_weights(weights: &MlpWeights, device: &B::Device) -> Self {
        let (p, h) = (weights.p, weights.d_hidden);
        let linear = |d_in: usize, d_out: usize, values: Vec<f32>| {
            let mut layer = LinearConfig::new(d_in, d_out)
                .with_bias(false)
                .init::<B>(device);
            let tensor = Tensor::from_data(TensorData::new(values, [d_in, d_out]), device);
            layer.weight = Param::from_tensor(tensor);
            layer
        };
        Self {
            fc1: linear(2 * p, h, transpose(&weights.fc1, h, 2 * p)),
            fc2: linear(h, p, transpose(&weights.fc2, p, h)),
        }
    }

    /// Replaces this network's weights by `weights`, keeping parameter ids (so optimizer state
    /// stays attached).
    ///
    /// # Errors
    /// [`Error::Shape`] if `weights` has another `p` or width.
    pub fn load_weights(self, weights: &MlpWeights) -> error::Result<Self> {
        if (weights.p, weights.d_hidden) != (self.p(), self.d_hidden()) {
            return Err(Error::Shape(format!(
                "weights are for p = {}, d_hidden = {}; the model has p = {}, d_hidden = {}",
                weights.p,
                weights.d_hidden,
                self.p(),
                self.d_hidden()
            )));
        }
        let fresh = Self::from_weights(weights, &self.fc1.weight.device());
        let mut model = self;
        let (w1, w2) = (fresh.fc1.weight.val(), fresh.fc2.weight.val());
        model.fc1.weight = model.fc1.weight.map(|_| w1);
        model.fc2.weight = model.fc2.weight.map(|_| w2);
        Ok(model)
    }
}

/// A float tensor's values on the host, row-major.
pub(crate) fn to_vec<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .to_vec()
        .expect("float tensor converts to f32")
}

/// Transposes a row-major `[rows, cols]` matrix.
pub(crate) fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

impl MlpWeights {
    /// Wraps weights in PyTorch's orientation.
    ///
    /// # Shapes
    /// `fc1: [d_hidden, 2p]`, `fc2: [p, d_hidden]`, both row-major.
    ///
    /// # Errors
    /// [`Error::InvalidModulus`] or [`Error::InvalidConfig`] for a bad `p` or width,
    /// [`Error::Shape`] if a vector's length does not match.
    pub fn new(p: usize, d_hidden: usize, fc1: Vec<f32>, fc2: Vec<f32>) -> error::Result<Self> {
        MlpConfig::new()
            .with_p(p)
            .with_d_hidden(d_hidden)
            .validate()?;
        for (name, len, want, shape) in [
            ("fc1.weight", fc1.len(), d_hidden * 2 * p, [d_hidden, 2 * p]),
            ("fc2.weight", fc2.len(), p * d_hidden, [p, d_hidden]),
        ] {
            if len != want {
                return Err(Error::Shape(format!(
                    "{name} has {len} values; {shape:?} needs {want}"
                )));
            }
        }
        Ok(Self {
            p,
            d_hidden,
            fc1,
            fc2,
        })
    }

    /// Builds weights from PyTorch-shaped tensors, inferring `p` and `d_hidden` from the shapes.
    ///
    /// # Errors
    /// [`Error::Shape`] naming the mismatch: a tensor that is not 2-D, an odd fc1 width, fc2
    /// rows that are not `p`, or widths that disagree.
    pub fn from_pytorch_shapes(
        fc1_shape: &[usize],
        fc1: Vec<f32>,
        fc2_shape: &[usize],
        fc2: Vec<f32>,
    ) -> error::Result<Self> {
        let (&[h1, two_p], &[p2, h2]) = (fc1_shape, fc2_shape) else {
            return Err(Error::Shape(format!(
                "fc1.weight {fc1_shape:?} and fc2.weight {fc2_shape:?} must both be 2-D"
            )));
        };
        if two_p % 2 != 0 {
            return Err(Error::Shape(format!(
                "fc1.weight {fc1_shape:?} has {two_p} input columns; one-hot pairs need an even 2p"
            )));
        }
        let p = two_p / 2;
        if p2 != p {
            return Err(Error::Shape(format!(
                "fc2.weight {fc2_shape:?} has {p2} rows but fc1.weight {fc1_shape:?} implies p = {p}"
            )));
        }
        if h1 != h2 {
            return Err(Error::Shape(format!(
                "fc1.weight {fc1_shape:?} has {h1} hidden neurons but fc2.weight {fc2_shape:?} has {h2}"
            )));
        }
        Self::new(p, h1, fc1, fc2)
    }

    /// The modulus.
    pub fn p(&self) -> usize {
        self.p
    }

    /// The hidden width.
    pub fn d_hidden(&self) -> usize {
        self.d_hidden
    }

    /// PyTorch's `fc1.weight`, row-major `[d_hidden, 2p]`.
    pub fn fc1(&self) -> &[f32] {
        &self.fc1
    }

    /// PyTorch's `fc2.weight`, row-major `[p, d_hidden]`.
    pub fn fc2(&self) -> &[f32] {
        &self.fc2
    }

    /// Neuron `n`'s input weights from operand a: `fc1.weight[n, :p]`.
    pub fn input_a(&self, n: usize) -> Vec<f64> {
        let row = &self.fc1[n * 2 * self.p..][..self.p];
        row.iter().map(|&v| v as f64).collect()
    }

    /// Neuron `n`'s input weights from operand b: `fc1.weight[n, p:]`.
    pub fn input_b(&self, n: usize) -> Vec<f64> {
        let row = &self.fc1[n * 2 * self.p + self.p..][..self.p];
        row.iter().map(|&v| v as f64).collect()
    }

    /// Neuron `n`'s output weights: `fc2.weight[:, n]`.
    pub fn output(&self, n: usize) -> Vec<f64> {
        (0..self.p)
            .map(|c| self.fc2[c * self.d_hidden + n] as f64)
            .collect()
    }

    /// Overwrites neuron `n`'s three weight vectors (each of length p).
    ///
    /// # Panics
    /// If `n >= d_hidden` or a vector's length is not p.
    pub fn set_neuron(&mut self, n: usize, input_a: &[f64], input_b: &[f64], output: &[f64]) {
        let p = self.p;
        assert!(n < self.d_hidden, "neuron {n} out of range");
        assert!(input_a.len() == p && input_b.len() == p && output.len() == p);
        for x in 0..p {
            self.fc1[n * 2 * p + x] = input_a[x] as f32;
            self.fc1[n * 2 * p + p + x] = input_b[x] as f32;
            self.fc2[x * self.d_hidden + n] = output[x] as f32;
        }
    }
}
