//! The open training loop, for methods the step does not build in: Burn's autodiff on the
//! [`Mlp`], with the caller's loss of the logits, any `burn-optim` optimiser, and a hook on the
//! gradients between backward and the optimiser's step ([`OpenTrainer`]).
//!
//! Everything else is [`Trainer`](crate::Trainer)'s: the data set and split of the config's
//! seed, its label noise, the same initial weights, the same batches in the same order, the same
//! [`EpochMetrics`] and [`History`], the same observers ([`EpochObserver`]), and a [`Trained`]
//! at the end, whose model and history [`RunFolder`](crate::run::RunFolder) writes. The step is
//! Burn's own operations, one after another, so it is slower than the built-in step's host code
//! (and rounds differently): the open loop is for trying a method, the built-in step for
//! sweeping it. The config's [`Method`](crate::Method), learning-rate schedule and AdamW
//! hyperparameters are not used: the loss, the optimiser and its hyperparameters are the
//! caller's; the network is the notebook's ReLU MLP.
//!
//! # Example
//! A method the library does not ship, in a few lines: label smoothing, with gradient clipping
//! in the hook, and Burn's Adam.
//! ```
//! use burn::{
//!     backend::{Autodiff, NdArray},
//!     optim::AdamConfig,
//!     tensor::{activation::log_softmax, Int, Tensor},
//! };
//! use grokking::{train::open::OpenTrainer, Control, MlpConfig, TrainingConfig};
//! type B = Autodiff<NdArray>;
//!
//! let config = TrainingConfig::new()
//!     .with_model(MlpConfig::new().with_p(7).with_d_hidden(16))
//!     .with_epochs(5);
//! let smoothed = |logits: Tensor<B, 2>, labels: Tensor<B, 1, Int>| -> Tensor<B, 1> {
//!     let [n, p] = logits.dims();
//!     let logp = log_softmax(logits, 1);
//!     let target = logp.clone().gather(1, labels.reshape([n, 1])).reshape([n]);
//!     (target * 0.9 + logp.mean_dim(1).reshape([n]) * 0.1).neg()
//! };
//! let trained = OpenTrainer::<B, _>::new(&config, AdamConfig::new().init(), &Default::default())?
//!     .with_loss(smoothed)
//!     .with_gradient_hook(|_model, grads| grads) // clip, filter or log the gradients here
//!     .run(|m: &grokking::EpochMetrics| {
//!         assert!(m.train_loss.is_finite());
//!         Control::Continue
//!     });
//! assert_eq!(trained.history.epochs.len(), 5);
//! # Ok::<(), grokking::Error>(())
//! ```

use std::time::Instant;

use burn::{
    module::AutodiffModule,
    optim::{GradientsParams, Optimizer},
    tensor::{
        activation::log_softmax, backend::AutodiffBackend, ElementConversion, Int, Tensor,
        TensorData,
    },
};

use crate::{
    analysis::evaluate::HostNetwork,
    data::{LabelNoise, ModularDataset, Split},
    error::Result,
    model::Mlp,
    step::hits_and_collapsed,
    train::{
        batches, ensemble::record_corrupted_accuracy, Control, EpochMetrics, EpochObserver,
        History, Trained, TrainingConfig,
    },
};

/// The loss of a batch: per-row losses `[n]` from the logits `[n, p]` and labels `[n]`; the step
/// minimises their mean.
pub type LossFn<B> = Box<dyn Fn(Tensor<B, 2>, Tensor<B, 1, Int>) -> Tensor<B, 1>>;

/// A hook on each step's gradients, given the model they belong to; it returns the gradients the
/// optimiser takes.
pub type GradientHook<B> = Box<dyn FnMut(&Mlp<B>, GradientsParams) -> GradientsParams>;

/// Softmax cross-entropy per row, the default loss of [`OpenTrainer`].
///
/// # Shapes
/// `logits: [n, p]`, `labels: [n]` -> `[n]`.
pub fn cross_entropy<B: AutodiffBackend>(
    logits: Tensor<B, 2>,
    labels: Tensor<B, 1, Int>,
) -> Tensor<B, 1> {
    let [n, _] = logits.dims();
    log_softmax(logits, 1)
        .gather(1, labels.reshape([n, 1]))
        .reshape([n])
        .neg()
}

/// A training run over Burn's autodiff with the caller's loss, optimiser and gradient hook. See
/// the [module docs](self).
pub struct OpenTrainer<B: AutodiffBackend, O: Optimizer<Mlp<B>, B>> {
    config: TrainingConfig,
    data: ModularDataset,
    /// `None` only while a step moves it through the optimiser.
    model: Option<Mlp<B>>,
    optimizer: O,
    loss: LossFn<B>,
    hook: Option<GradientHook<B>>,
    /// `[n_train, 2]`, `[n_train]`: the training split in its order, labels with the noise.
    train: (Tensor<B, 2, Int>, Tensor<B, 1, Int>),
    val: (Tensor<B, 2, Int>, Tensor<B, 1, Int>),
    noise: LabelNoise,
    history: History,
    /// Seconds spent in `run_epoch` so far (the observers' time left out, as `Trainer`'s).
    seconds: f64,
}

impl<B: AutodiffBackend, O: Optimizer<Mlp<B>, B>> OpenTrainer<B, O> {
    /// The config's data set, split, label noise and initial weights on `device`, trained by
    /// `optimizer` (at the config's learning rate) on softmax cross-entropy until a
    /// [`with_loss`](Self::with_loss) says otherwise.
    ///
    /// # Errors
    /// Any invalid field of `config` ([`TrainingConfig::validate`]).
    pub fn new(config: &TrainingConfig, optimizer: O, device: &B::Device) -> Result<Self> {
        config.validate()?;
        let data = ModularDataset::with_operation(
            config.model.p,
            config.operation,
            config.train_fraction,
            config.seed,
        )?;
        let mut labels = data.labels(Split::Train);
        let noise = data.label_noise(config.label_noise, config.seed)?;
        noise.apply(&mut labels);
        let n = labels.len();
        let train = data.tensors::<B>(Split::Train, device);
        let train_labels = Tensor::from_data(TensorData::new(labels, [n]), device);
        let val = data.tensors::<B>(Split::Val, device);
        let weights = config.model.init_weights(config.seed);
        Ok(Self {
            config: config.clone(),
            data,
            model: Some(Mlp::from_weights(&weights, device)),
            optimizer,
            loss: Box::new(cross_entropy),
            hook: None,
            train: (train.pairs, train_labels),
            val: (val.pairs, val.labels),
            noise,
            history: History::default(),
            seconds: 0.0,
        })
    }

    /// Trains on `loss` instead: per-row losses of the logits and labels (see [`LossFn`]).
    pub fn with_loss(
        mut self,
        loss: impl Fn(Tensor<B, 2>, Tensor<B, 1, Int>) -> Tensor<B, 1> + 'static,
    ) -> Self {
        self.loss = Box::new(loss);
        self
    }

    /// Calls `hook` on every step's gradients before the optimiser takes them (see
    /// [`GradientHook`]).
    pub fn with_gradient_hook(
        mut self,
        hook: impl FnMut(&Mlp<B>, GradientsParams) -> GradientsParams + 'static,
    ) -> Self {
        self.hook = Some(Box::new(hook));
        self
    }

    /// The model as it is now.
    pub fn model(&self) -> &Mlp<B> {
        self.model
            .as_ref()
            .expect("the model is back after each step")
    }

    /// The data set and split.
    pub fn data(&self) -> &ModularDataset {
        &self.data
    }

    /// Metrics of the epochs run so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// One epoch: a step per batch (the loss and accuracy of each batch taken before its step),
    /// then the validation rows. Returns its metrics; `train_loss` and `val_loss` are the
    /// caller's loss. With label noise the history also gets `Trainer`'s `corrupted_acc` and
    /// `corrupted_true_acc` columns.
    pub fn run_epoch(&mut self) -> EpochMetrics {
        let started = Instant::now();
        let (pairs, labels) = self.train.clone();
        let n_train = labels.dims()[0];
        let device = labels.device();
        let zero = || Tensor::<B::InnerBackend, 1>::zeros([1], &device);
        let (mut loss_sum, mut correct, mut collapsed) = (zero(), zero(), zero());
        for rows in batches(n_train, self.config.batch_size) {
            let batch = pairs.clone().slice([rows.clone(), 0..2]);
            let y = labels.clone().slice([rows]);
            let model = self
                .model
                .take()
                .expect("the model is back after each step");
            let logits = model.forward_pairs(batch);
            let row_loss = (self.loss)(logits.clone(), y.clone());
            let (c, k) = hits_and_collapsed(logits.inner().unsqueeze(), y.inner().unsqueeze());
            correct = correct + c;
            collapsed = collapsed + k;
            loss_sum = loss_sum + row_loss.clone().inner().sum();
            let grads = GradientsParams::from_grads(row_loss.mean().backward(), &model);
            let grads = match &mut self.hook {
                Some(hook) => hook(&model, grads),
                None => grads,
            };
            self.model = Some(self.optimizer.step(self.config.lr, model, grads));
        }
        let model = self.model().valid();
        let (val_pairs, val_labels) = (self.val.0.clone().inner(), self.val.1.clone().inner());
        let n_val = val_labels.dims()[0];
        let logits = model.forward_pairs(val_pairs);
        let val_loss = (self.loss)(
            Tensor::from_inner(logits.clone()),
            Tensor::from_inner(val_labels.clone()),
        )
        .inner()
        .sum();
        let (val_correct, _) = hits_and_collapsed(logits.unsqueeze(), val_labels.unsqueeze());
        let w = |t: Tensor<B::InnerBackend, 2>| t.powi_scalar(2).sum();
        let weight_sq = w(model.fc1.weight.val()) + w(model.fc2.weight.val());
        let scalar = |t: Tensor<B::InnerBackend, 1>| t.into_scalar().elem::<f64>();
        let metrics = EpochMetrics {
            epoch: self.history.epochs.len(),
            train_loss: scalar(loss_sum) / n_train as f64,
            val_loss: scalar(val_loss) / n_val as f64,
            train_acc: scalar(correct) / n_train as f64,
            val_acc: scalar(val_correct) / n_val as f64,
            seconds: self.seconds + started.elapsed().as_secs_f64(),
            softmax_collapse: scalar(collapsed) / n_train as f64,
            weight_norm: scalar(weight_sq).sqrt(),
        };
        self.seconds = metrics.seconds;
        self.history.epochs.push(metrics);
        let network = HostNetwork::new(&model.weights());
        record_corrupted_accuracy(&mut self.history, &self.data, &self.noise, &network);
        metrics
    }

    /// Runs the remaining epochs of the configuration, calling `observer` after each, and hands
    /// back the model (without autodiff) and history.
    pub fn run(mut self, mut observer: impl EpochObserver) -> Trained<B::InnerBackend> {
        while self.history.epochs.len() < self.config.epochs {
            let metrics = self.run_epoch();
            if observer.on_epoch(&metrics) == Control::Stop {
                break;
            }
        }
        Trained {
            model: self.model().valid(),
            history: self.history,
            data: self.data,
        }
    }
}
