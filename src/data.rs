//! The modular-arithmetic data set: the pairs (a, b) labelled `a ∘ b mod p` for an [`Operation`]
//! (the notebook's `(a + b) mod p` by default), split by a seeded shuffle into training and
//! validation rows, as tensors in one-hot or index form.
//!
//! Row id `r` is the pair `(a, b) = (r / p, r % p)`, the notebook's `number1 * p + number2`
//! order. The data set holds the `n` pairs the operation defines (all p², except for division,
//! which leaves out b = 0). The shuffle is NumPy's legacy `np.random.seed(seed);
//! np.random.permutation(n)` reproduced bit for bit (see [`Mt19937`]) and applied to the defined
//! rows in grid order, so for addition a seed gives the same training rows as the origin notebook;
//! the first `floor(train_fraction * n)` shuffled rows train, the rest validate.
//!
//! # Example
//! ```
//! use grokking::ModularDataset;
//! let data = ModularDataset::new(113, 0.8, 1337)?;
//! assert_eq!(data.train_rows().len(), 10_215); // int(0.8 * 113 * 113), as in the notebook
//! assert_eq!(data.train_rows().len() + data.val_rows().len(), 113 * 113);
//! let (a, b) = data.pair(data.train_rows()[0]);
//! assert_eq!(data.label(data.train_rows()[0]), (a + b) % 113);
//! # Ok::<(), grokking::Error>(())
//! ```

use burn::tensor::{backend::Backend, Int, Tensor, TensorData};

use crate::{
    error::{Error, Result},
    mt19937::Mt19937,
    operation::Operation,
};

/// The largest modulus accepted: p² rows must be indexable by the `i32` integer tensors of every
/// backend (46_340² < 2³¹ - 1 < 46_341²).
pub const MAX_P: usize = 46_340;

/// Which rows of the data set to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The training rows, in shuffled order.
    Train,
    /// The validation rows, in shuffled order.
    Val,
    /// All rows (the pairs the operation defines), in grid order `(a, b) = (r / p, r % p)`.
    Full,
}

/// The data set of one operation and modulus, split into training and validation rows.
#[derive(Debug, Clone, PartialEq)]
pub struct ModularDataset {
    p: usize,
    operation: Operation,
    /// Row ids `a * p + b`, training rows first.
    shuffled: Vec<u32>,
    n_train: usize,
    /// The defined row ids, ascending.
    grid: Vec<u32>,
    /// The label of every row id, [`UNDEFINED`] where the operation is undefined.
    labels: Vec<u32>,
}

/// The label of a pair the operation does not define.
const UNDEFINED: u32 = u32::MAX;

/// The corrupted training rows of a data set ([`ModularDataset::label_noise`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelNoise {
    /// Positions in the training split ([`ModularDataset::train_rows`]), ascending.
    pub positions: Vec<usize>,
    /// The wrong label of each, in the same order (never the true one).
    pub labels: Vec<u32>,
}

impl LabelNoise {
    /// Writes the wrong labels into `labels`, the training split's labels in its order.
    ///
    /// # Panics
    /// If `labels` is shorter than a position.
    pub fn apply<T: From<u32>>(&self, labels: &mut [T]) {
        for (&position, &label) in self.positions.iter().zip(&self.labels) {
            labels[position] = T::from(label);
        }
    }
}

/// Tensors of one split: inputs in index form and labels.
#[derive(Debug, Clone)]
pub struct SplitTensors<B: Backend> {
    /// `[n, 2]`: the pairs as fc1 row indices `(a, p + b)`.
    pub pairs: Tensor<B, 2, Int>,
    /// `[n]`: the labels `a ∘ b mod p`.
    pub labels: Tensor<B, 1, Int>,
}

impl ModularDataset {
    /// The addition data set for modulus `p` (the notebook's), with `floor(train_fraction * p *
    /// p)` training rows chosen by a NumPy-compatible shuffle seeded with `seed`.
    ///
    /// # Errors
    /// [`Error::InvalidModulus`] if `p < 2` or `p > MAX_P`; [`Error::InvalidTrainFraction`] if the
    /// fraction is not strictly inside (0, 1) or leaves no row on one side of the split.
    pub fn new(p: usize, train_fraction: f64, seed: u64) -> Result<Self> {
        Self::with_operation(p, Operation::Add, train_fraction, seed)
    }

    /// The data set of `operation` for modulus `p`: its `n` defined pairs, `floor(train_fraction
    /// * n)` of them for training, chosen by a NumPy-compatible shuffle seeded with `seed`.
    ///
    /// # Errors
    /// As [`ModularDataset::new`], and [`Error::InvalidOperation`] if the operation is not defined
    /// for `p` ([`Operation::labels`]).
    pub fn with_operation(
        p: usize,
        operation: Operation,
        train_fraction: f64,
        seed: u64,
    ) -> Result<Self> {
        check_modulus(p)?;
        let labels: Vec<u32> = operation
            .labels(p)?
            .into_iter()
            .map(|l| l.unwrap_or(UNDEFINED))
            .collect();
        let grid: Vec<u32> = (0..(p * p) as u32)
            .filter(|&r| labels[r as usize] != UNDEFINED)
            .collect();
        let n_train = train_rows_for(p, grid.len(), train_fraction)?;
        let mut rng = Mt19937::new(seed)?;
        let shuffled = rng
            .permutation(grid.len())
            .into_iter()
            .map(|i| grid[i as usize])
            .collect();
        Ok(Self {
            p,
            operation,
            shuffled,
            n_train,
            grid,
            labels,
        })
    }

    /// Label noise on the training rows (Doshi et al. 2024): `floor(fraction · n_train)` of
    /// them, each given a wrong label drawn uniformly from the other `p − 1` classes. The
    /// draws continue the NumPy-compatible generator of the split (seeded with `seed`, the
    /// data set's own): after the split's `permutation(n)`, `permutation(n_train)` chooses the
    /// rows (its first `m` entries, positions in the training split) and `1 + interval(p − 2)`
    /// for each of them, in that order, the offset of its wrong label from the true one
    /// (NumPy's `randint(1, p)`). Validation labels are never touched.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (`label-noise`) if `fraction` is not in [0, 1).
    pub fn label_noise(&self, fraction: f64, seed: u64) -> Result<LabelNoise> {
        if !(0.0..1.0).contains(&fraction) {
            return Err(Error::InvalidConfig {
                field: "label-noise",
                value: fraction.to_string(),
                reason: "it must be in [0, 1)",
            });
        }
        let mut rng = Mt19937::new(seed)?;
        rng.permutation(self.grid.len());
        let m = (fraction * self.n_train as f64) as usize;
        let chosen = rng.permutation(self.n_train);
        let mut rows: Vec<(usize, u32)> = chosen[..m]
            .iter()
            .map(|&position| {
                let position = position as usize;
                let truth = self.label(self.train_rows()[position]) as u32;
                let offset = 1 + rng.interval(self.p as u32 - 2);
                (position, (truth + offset) % self.p as u32)
            })
            .collect();
        rows.sort_unstable();
        Ok(LabelNoise {
            positions: rows.iter().map(|&(position, _)| position).collect(),
            labels: rows.iter().map(|&(_, label)| label).collect(),
        })
    }

    /// The modulus.
    pub fn p(&self) -> usize {
        self.p
    }

    /// The operation the rows are labelled with.
    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// Number of rows: the pairs the operation defines (p², or p(p - 1) for division).
    pub fn len(&self) -> usize {
        self.grid.len()
    }

    /// Always false: a data set has at least 2 rows (division mod 2 has exactly 2).
    pub fn is_empty(&self) -> bool {
        self.grid.is_empty()
    }

    /// Training row ids, in shuffled order.
    pub fn train_rows(&self) -> &[u32] {
        &self.shuffled[..self.n_train]
    }

    /// Validation row ids, in shuffled order.
    pub fn val_rows(&self) -> &[u32] {
        &self.shuffled[self.n_train..]
    }

    /// Row ids of a split.
    pub fn rows(&self, split: Split) -> &[u32] {
        match split {
            Split::Train => self.train_rows(),
            Split::Val => self.val_rows(),
            Split::Full => &self.grid,
        }
    }

    /// The pair `(a, b)` of a row id.
    ///
    /// # Panics
    /// If `row >= p²`.
    pub fn pair(&self, row: u32) -> (usize, usize) {
        let row = row as usize;
        assert!(
            row < self.p * self.p,
            "row {row} out of range for p = {}",
            self.p
        );
        (row / self.p, row % self.p)
    }

    /// The label `a ∘ b mod p` of a row id.
    ///
    /// # Panics
    /// If `row >= p²` or the operation does not define the row's pair.
    pub fn label(&self, row: u32) -> usize {
        let label = self.labels[row as usize];
        assert!(label != UNDEFINED, "row {row} is not in the data set");
        label as usize
    }

    /// The rows of a split as fc1 row indices: `[a, p + b]` per row, flattened (`2 * n` values).
    pub fn pair_indices(&self, split: Split) -> Vec<i64> {
        let rows = self.rows(split);
        let mut out = Vec::with_capacity(2 * rows.len());
        for &r in rows {
            let (a, b) = self.pair(r);
            out.push(a as i64);
            out.push((self.p + b) as i64);
        }
        out
    }

    /// The labels of a split, in row order.
    pub fn labels(&self, split: Split) -> Vec<i64> {
        self.rows(split)
            .iter()
            .map(|&r| self.label(r) as i64)
            .collect()
    }

    /// A split as index-form tensors on `device`.
    ///
    /// # Shapes
    /// `pairs: [n, 2]` (values `a` and `p + b`), `labels: [n]`.
    pub fn tensors<B: Backend>(&self, split: Split, device: &B::Device) -> SplitTensors<B> {
        let n = self.rows(split).len();
        let pairs = Tensor::from_data(TensorData::new(self.pair_indices(split), [n, 2]), device);
        let labels = Tensor::from_data(TensorData::new(self.labels(split), [n]), device);
        SplitTensors { pairs, labels }
    }

    /// A split in the notebook's one-hot form: row `i` has ones at columns `a` and `p + b`.
    ///
    /// # Shapes
    /// `[n, 2p]`.
    pub fn one_hot<B: Backend>(&self, split: Split, device: &B::Device) -> Tensor<B, 2> {
        let rows = self.rows(split);
        let width = 2 * self.p;
        let mut values = vec![0f32; rows.len() * width];
        for (i, &r) in rows.iter().enumerate() {
            let (a, b) = self.pair(r);
            values[i * width + a] = 1.0;
            values[i * width + self.p + b] = 1.0;
        }
        Tensor::from_data(TensorData::new(values, [rows.len(), width]), device)
    }
}

/// Checks that `p` is a usable modulus.
///
/// # Errors
/// [`Error::InvalidModulus`] if `p < 2` or `p > MAX_P`.
pub fn check_modulus(p: usize) -> Result<()> {
    if p < 2 {
        return Err(Error::InvalidModulus {
            p,
            reason: "it must be at least 2".into(),
        });
    }
    if p > MAX_P {
        return Err(Error::InvalidModulus {
            p,
            reason: format!(
                "it must be at most {MAX_P} so that the p² rows can be indexed by 32-bit integers"
            ),
        });
    }
    Ok(())
}

/// The number of training rows of `n` rows of modulus `p`, `floor(train_fraction * n)` computed as
/// Python does (`int(train_fraction * p * p)` when `n = p²`, the notebook's order of operations).
///
/// # Errors
/// [`Error::InvalidTrainFraction`] if the fraction is not strictly inside (0, 1) or leaves no row
/// on one side of the split.
pub fn train_rows_for(p: usize, n: usize, train_fraction: f64) -> Result<usize> {
    let invalid = |reason: String| Error::InvalidTrainFraction {
        fraction: train_fraction,
        reason,
    };
    if !(train_fraction > 0.0 && train_fraction < 1.0) {
        return Err(invalid("it must lie strictly between 0 and 1".into()));
    }
    // Same operation order as the notebook's `int(train_proportion * p * p)`.
    let n_train = if n == p * p {
        (train_fraction * p as f64 * p as f64).floor() as usize
    } else {
        (train_fraction * n as f64).floor() as usize
    };
    if n_train == 0 || n_train >= n {
        return Err(invalid(format!(
            "with p = {p} it leaves {n_train} training and {} validation rows of {n}; each side needs at least one",
            n - n_train.min(n)
        )));
    }
    Ok(n_train)
}
