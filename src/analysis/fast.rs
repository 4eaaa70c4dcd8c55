//! Full-grid logits kept in memory and updated one neuron at a time, in `f32`.
//!
//! Each neuron adds `post_n[a, b] · out_n[c]` to logit `c` of pair `(a, b)`, so changing one
//! neuron (replacing it by its cosines, or adding a new one) costs `p³` multiply-adds instead of
//! the `p³ · d_hidden` of a whole forward pass. Curves over nested sets of neurons (accuracy
//! against the fraction replaced, or against the number of neurons) therefore cost about one
//! forward pass each. `f32` accumulation can flip a prediction whose two best logits differ by
//! about 1e-6 of their size; [`evaluate::accuracy`](crate::analysis::accuracy) is the exact
//! `f64` reference.

use crate::{
    analysis::evaluate::first_argmax,
    data::{ModularDataset, Split},
};

/// Logits of all p² pairs, `[p², p]`, row `a * p + b`.
#[derive(Debug, Clone)]
pub struct GridLogits {
    p: usize,
    values: Vec<f32>,
}

impl GridLogits {
    /// All-zero logits (a network with no neurons).
    pub fn zeros(p: usize) -> Self {
        GridLogits {
            p,
            values: vec![0.0; p * p * p],
        }
    }

    /// The modulus.
    pub fn p(&self) -> usize {
        self.p
    }

    /// Adds `sign ·` the contribution of one neuron with input weights `input_a`, `input_b`
    /// and output weights `output`.
    ///
    /// # Shapes
    /// `input_a, input_b, output: [p]`.
    ///
    /// # Panics
    /// If a vector's length is not p.
    pub fn add_neuron(&mut self, input_a: &[f64], input_b: &[f64], output: &[f64], sign: f32) {
        let p = self.p;
        assert!(
            input_a.len() == p && input_b.len() == p && output.len() == p,
            "neuron vectors must have length p = {p}"
        );
        let out: Vec<f32> = output.iter().map(|&v| sign * v as f32).collect();
        let wb: Vec<f32> = input_b.iter().map(|&v| v as f32).collect();
        for (a, &wa) in input_a.iter().enumerate() {
            let wa = wa as f32;
            for (b, &wb) in wb.iter().enumerate() {
                let post = (wa + wb).max(0.0);
                if post == 0.0 {
                    continue;
                }
                let row = &mut self.values[(a * p + b) * p..][..p];
                for (l, &o) in row.iter_mut().zip(&out) {
                    *l += post * o;
                }
            }
        }
    }

    /// Fraction of `data`'s rows (all of them) whose largest logit (first on ties) is the label.
    ///
    /// # Panics
    /// If `data` is for another modulus.
    pub fn accuracy(&self, data: &ModularDataset) -> f64 {
        let p = self.p;
        assert_eq!(data.p(), p, "the data set is for another modulus");
        let rows = data.rows(Split::Full);
        let right = rows
            .iter()
            .filter(|&&row| first_argmax(&self.values[row as usize * p..][..p]) == data.label(row))
            .count();
        right as f64 / rows.len() as f64
    }
}
