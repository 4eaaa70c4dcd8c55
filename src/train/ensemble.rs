//! K independent networks of one shape trained as one batched program: [`Ensemble`].

use std::time::{Duration, Instant};

use burn::tensor::{
    activation::{log_softmax, relu},
    backend::{AutodiffBackend, Backend},
    Int, Tensor, TensorData,
};

use super::{EpochMetrics, History, TrainingConfig};
use crate::{
    data::{ModularDataset, Split},
    error::{Error, Result},
    model::{to_vec, transpose, MlpWeights},
};

const BETA_1: f64 = 0.9;
const BETA_2: f64 = 0.999;

/// Per-member fc1 row indices and labels of one split.
struct StackedSplit<B: Backend> {
    /// `[K, n]`: `a`.
    a: Tensor<B, 2, Int>,
    /// `[K, n]`: `p + b`.
    b: Tensor<B, 2, Int>,
    /// `[K, n]`.
    labels: Tensor<B, 2, Int>,
}

impl<B: Backend> StackedSplit<B> {
    fn new(data: &[ModularDataset], split: Split, device: &B::Device) -> Self {
        let k = data.len();
        let n = data[0].rows(split).len();
        let p = data[0].p();
        let (mut a, mut b, mut labels) = (
            Vec::with_capacity(k * n),
            Vec::with_capacity(k * n),
            Vec::with_capacity(k * n),
        );
        for set in data {
            for &row in set.rows(split) {
                let (x, y) = set.pair(row);
                a.push(x as i64);
                b.push((p + y) as i64);
                labels.push(set.label(row) as i64);
            }
        }
        let tensor = |values: Vec<i64>| Tensor::from_data(TensorData::new(values, [k, n]), device);
        Self {
            a: tensor(a),
            b: tensor(b),
            labels: tensor(labels),
        }
    }

    fn rows(&self, rows: std::ops::Range<usize>) -> Self {
        let k = self.a.dims()[0];
        let slice = |t: &Tensor<B, 2, Int>| t.clone().slice([0..k, rows.clone()]);
        Self {
            a: slice(&self.a),
            b: slice(&self.b),
            labels: slice(&self.labels),
        }
    }
}

/// Logits of every member for its rows.
///
/// # Shapes
/// `fc1 [K, 2p, h]`, `fc2 [K, h, p]`, rows `[K, n]` -> `[K, n, p]`.
fn logits<B: Backend>(
    fc1: Tensor<B, 3>,
    fc2: Tensor<B, 3>,
    rows: &StackedSplit<B>,
) -> Tensor<B, 3> {
    let [k, two_p, _] = fc1.dims();
    let n = rows.a.dims()[1];
    let columns = Tensor::<B, 1, Int>::arange(0..two_p as i64, &fc1.device())
        .reshape([1, 1, two_p])
        .expand([k, n, two_p]);
    let one_hot = |index: &Tensor<B, 2, Int>| {
        index
            .clone()
            .reshape([k, n, 1])
            .expand([k, n, two_p])
            .equal(columns.clone())
            .float()
    };
    let inputs = one_hot(&rows.a) + one_hot(&rows.b); // [K, n, 2p]
    relu(inputs.matmul(fc1)).matmul(fc2)
}

/// Per-member mean cross-entropy `[K]` and number of right predictions `[K]`.
fn loss_and_correct<B: Backend>(
    logits: Tensor<B, 3>,
    labels: Tensor<B, 2, Int>,
) -> (Tensor<B, 1>, Tensor<B, 1, Int>) {
    let [k, n, _] = logits.dims();
    let labels = labels.unsqueeze_dim::<3>(2); // [K, n, 1]
    let correct = logits
        .clone()
        .argmax(2)
        .equal(labels.clone())
        .int()
        .sum_dim(1)
        .reshape([k]);
    let loss = log_softmax(logits, 2)
        .gather(2, labels)
        .sum_dim(1)
        .reshape([k])
        .div_scalar(n as f64)
        .neg();
    (loss, correct)
}

/// What members of one ensemble must share: `(p, d_hidden, train_fraction bits, batch_size,
/// epochs)`.
pub fn shape_key(config: &TrainingConfig) -> (usize, usize, u64, usize, usize) {
    (
        config.model.p,
        config.model.d_hidden,
        config.train_fraction.to_bits(),
        config.batch_size,
        config.epochs,
    )
}

/// AdamW's moments for one stacked weight.
struct Moments<B: Backend> {
    first: Tensor<B, 3>,
    second: Tensor<B, 3>,
}

/// K networks of one shape (same p, width, train fraction, batch size and epochs), each with its
/// own seed, learning rate and weight decay, trained as one batched program.
///
/// The weights of all members are stacked, `fc1 [K, 2p, h]` and `fc2 [K, h, p]` (Burn's layout per
/// member), and one step does for every member at once what [`Trainer`](super::Trainer)'s generic
/// engine does for one: fc1 applied to the batch's one-hot rows (built on the device from the
/// indices) as a batched matrix product, ReLU, a second batched product, softmax cross-entropy
/// (mean over each member's batch), autodiff, and
/// AdamW with each member's own learning rate and weight decay (`[K, 1, 1]` tensors). Each member
/// has its own seed, so its own initial weights, data split and batch order. Losses of different
/// members share no parameter, so the gradient of their sum is each member's own gradient: member
/// `k`'s history equals training it alone, to float rounding (`tests/sweep.rs`).
///
/// Metrics stay on the device through an epoch and are read once per epoch for all members.
/// On a GPU this is what fills the card: one launch sequence per step for K models.
///
/// fc1 is a one-hot product here, not a gather as in the single model: the gradient of a gather
/// is a scatter-add into the stacked rows, which Burn 0.21's wgpu backend ran in 25 ms a step at
/// K = 256 on an H100; a batched matrix product is what GPUs do fastest. Both give the same
/// forward values exactly (adding zeros is exact) and gradients to float rounding.
pub struct Ensemble<B: AutodiffBackend> {
    configs: Vec<TrainingConfig>,
    data: Vec<ModularDataset>,
    fc1: Tensor<B::InnerBackend, 3>,
    fc2: Tensor<B::InnerBackend, 3>,
    adam: Option<[Moments<B::InnerBackend>; 2]>,
    step: i32,
    /// `[K, 1, 1]` learning rates and `1 - lr·wd` factors.
    lr: Tensor<B::InnerBackend, 3>,
    decay: Tensor<B::InnerBackend, 3>,
    train: StackedSplit<B::InnerBackend>,
    val: StackedSplit<B::InnerBackend>,
    histories: Vec<History>,
    elapsed: Duration,
}

impl<B: AutodiffBackend> Ensemble<B> {
    /// Builds every member's data set and initial weights (as [`Trainer::new`](super::Trainer::new)
    /// would for its config alone) and stacks them on `device`.
    ///
    /// # Errors
    /// An invalid config; [`Error::InvalidConfig`] if `configs` is empty or its members differ in
    /// anything but seed, learning rate and weight decay (see [`shape_key`]).
    pub fn new(configs: &[TrainingConfig], device: &B::Device) -> Result<Self> {
        let first = configs.first().ok_or(Error::InvalidConfig {
            field: "configs",
            value: "[]".into(),
            reason: "an ensemble needs at least one member",
        })?;
        for config in configs {
            config.validate()?;
            if shape_key(config) != shape_key(first) {
                return Err(Error::InvalidConfig {
                    field: "configs",
                    value: format!("{:?}", shape_key(config)),
                    reason: "members of one ensemble must share p, width, train fraction, \
                             batch size and epochs",
                });
            }
        }
        let (p, h) = (first.model.p, first.model.d_hidden);
        let k = configs.len();
        let data = configs
            .iter()
            .map(|c| ModularDataset::new(p, c.train_fraction, c.seed))
            .collect::<Result<Vec<_>>>()?;
        // Burn layout per member: fc1 [2p, h], fc2 [h, p] (MlpWeights hold the transposes).
        let (mut fc1, mut fc2) = (Vec::new(), Vec::new());
        for config in configs {
            let weights = config.model.init_weights(config.seed);
            fc1.extend(transpose(weights.fc1(), h, 2 * p));
            fc2.extend(transpose(weights.fc2(), p, h));
        }
        let per_member = |values: Vec<f64>| {
            Tensor::<B::InnerBackend, 3>::from_data(TensorData::new(values, [k, 1, 1]), device)
        };
        Ok(Self {
            fc1: Tensor::from_data(TensorData::new(fc1, [k, 2 * p, h]), device),
            fc2: Tensor::from_data(TensorData::new(fc2, [k, h, p]), device),
            adam: None,
            step: 0,
            lr: per_member(configs.iter().map(|c| c.lr).collect()),
            decay: per_member(
                configs
                    .iter()
                    .map(|c| 1.0 - c.lr * c.weight_decay)
                    .collect(),
            ),
            train: StackedSplit::new(&data, Split::Train, device),
            val: StackedSplit::new(&data, Split::Val, device),
            histories: vec![History::default(); k],
            configs: configs.to_vec(),
            data,
            elapsed: Duration::ZERO,
        })
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.configs.len()
    }

    /// Whether the ensemble has no member (never true for a built one).
    pub fn is_empty(&self) -> bool {
        self.configs.is_empty()
    }

    /// The members' configurations, in member order.
    pub fn configs(&self) -> &[TrainingConfig] {
        &self.configs
    }

    /// Each member's metrics so far, in member order.
    pub fn histories(&self) -> &[History] {
        &self.histories
    }

    /// Member `k`'s current weights on the host.
    ///
    /// # Panics
    /// If `k` is not below [`Ensemble::len`].
    pub fn weights(&self, k: usize) -> MlpWeights {
        let [_, two_p, h] = self.fc1.dims();
        let p = two_p / 2;
        let member = |t: &Tensor<B::InnerBackend, 3>, rows, cols| {
            to_vec(
                t.clone()
                    .slice([k..k + 1, 0..rows, 0..cols])
                    .reshape([rows, cols]),
            )
        };
        let fc1 = transpose(&member(&self.fc1, two_p, h), two_p, h);
        let fc2 = transpose(&member(&self.fc2, h, p), h, p);
        MlpWeights::new(p, h, fc1, fc2).expect("stacked shapes are consistent")
    }

    /// One epoch of every member (a step per batch, then validation); each member's metrics.
    pub fn run_epoch(&mut self) -> Vec<EpochMetrics> {
        let start = Instant::now();
        let k = self.len();
        let device = self.fc1.device();
        let n_train = self.data[0].train_rows().len();
        let batch_size = self.configs[0].batch_size;
        let mut loss_sum = Tensor::<B::InnerBackend, 1>::zeros([k], &device);
        let mut correct = Tensor::<B::InnerBackend, 1, Int>::zeros([k], &device);
        for begin in (0..n_train).step_by(batch_size) {
            let end = (begin + batch_size).min(n_train);
            let (loss, right) = self.step(begin..end);
            loss_sum = loss_sum + loss.mul_scalar((end - begin) as f64);
            correct = correct + right;
        }
        let val_logits = logits(self.fc1.clone(), self.fc2.clone(), &self.val);
        let (val_loss, val_correct) = loss_and_correct(val_logits, self.val.labels.clone());
        // One read of everything for all members.
        let all = Tensor::cat(
            vec![loss_sum, correct.float(), val_loss, val_correct.float()],
            0,
        );
        let values = to_vec(all);
        self.elapsed += start.elapsed();
        let n_val = self.data[0].val_rows().len() as f64;
        (0..k)
            .map(|m| {
                let metrics = EpochMetrics {
                    epoch: self.histories[m].epochs.len(),
                    train_loss: values[m] as f64 / n_train as f64,
                    train_acc: values[k + m] as f64 / n_train as f64,
                    val_loss: values[2 * k + m] as f64,
                    val_acc: values[3 * k + m] as f64 / n_val,
                    seconds: self.elapsed.as_secs_f64(),
                };
                self.histories[m].epochs.push(metrics);
                metrics
            })
            .collect()
    }

    /// Runs the remaining epochs; `on_epoch` is called after each with every member's metrics.
    pub fn run(&mut self, mut on_epoch: impl FnMut(&[EpochMetrics])) {
        while self.histories[0].epochs.len() < self.configs[0].epochs {
            let metrics = self.run_epoch();
            on_epoch(&metrics);
        }
    }

    /// One AdamW step of every member on its rows `rows`: each member's mean loss and number of
    /// right predictions before the step, left on the device.
    fn step(
        &mut self,
        rows: std::ops::Range<usize>,
    ) -> (Tensor<B::InnerBackend, 1>, Tensor<B::InnerBackend, 1, Int>) {
        let fc1 = Tensor::<B, 3>::from_inner(self.fc1.clone()).require_grad();
        let fc2 = Tensor::<B, 3>::from_inner(self.fc2.clone()).require_grad();
        let batch = self.train.rows(rows);
        let batch = StackedSplit::<B> {
            a: Tensor::from_inner(batch.a),
            b: Tensor::from_inner(batch.b),
            labels: Tensor::from_inner(batch.labels),
        };
        let (loss, correct) = loss_and_correct(
            logits(fc1.clone(), fc2.clone(), &batch),
            batch.labels.clone(),
        );
        let mean_loss = loss.clone().inner();
        let grads = loss.sum().backward();
        let g1 = fc1.grad(&grads).expect("fc1 takes part in the loss");
        let g2 = fc2.grad(&grads).expect("fc2 takes part in the loss");
        self.step += 1;
        let adam = self.adam.get_or_insert_with(|| {
            let zeros = |t: &Tensor<B::InnerBackend, 3>| Moments {
                first: t.zeros_like(),
                second: t.zeros_like(),
            };
            [zeros(&self.fc1), zeros(&self.fc2)]
        });
        let [m1, m2] = adam;
        let (lr, decay, step, epsilon) = (
            &self.lr,
            &self.decay,
            self.step,
            self.configs[0].adam_epsilon,
        );
        self.fc1 = adamw(self.fc1.clone(), g1, m1, lr, decay, step, epsilon);
        self.fc2 = adamw(self.fc2.clone(), g2, m2, lr, decay, step, epsilon);
        (mean_loss, correct.inner())
    }
}

/// Burn's (and PyTorch's) AdamW update with per-member `lr` and `decay = 1 - lr·wd` `[K, 1, 1]`.
fn adamw<B: Backend>(
    weight: Tensor<B, 3>,
    grad: Tensor<B, 3>,
    moments: &mut Moments<B>,
    lr: &Tensor<B, 3>,
    decay: &Tensor<B, 3>,
    step: i32,
    epsilon: f64,
) -> Tensor<B, 3> {
    moments.first = moments
        .first
        .clone()
        .mul_scalar(BETA_1)
        .add(grad.clone().mul_scalar(1.0 - BETA_1));
    moments.second = moments
        .second
        .clone()
        .mul_scalar(BETA_2)
        .add(grad.powi_scalar(2).mul_scalar(1.0 - BETA_2));
    let first = moments.first.clone().div_scalar(1.0 - BETA_1.powi(step));
    let second = moments.second.clone().div_scalar(1.0 - BETA_2.powi(step));
    let update = first.div(second.sqrt().add_scalar(epsilon));
    weight.mul(decay.clone()) - update.mul(lr.clone())
}
