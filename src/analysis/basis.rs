//! The coordinates in which a network's weights are periodic: a relabelling of the residues that
//! turns the data set's operation into addition mod `m`.
//!
//! A network that learned `(a + b) mod p` has cosine weights over the residues themselves. One
//! that learned `(a - b) mod p` has them too, with the law `c = a + (-b)`: reading input b at
//! `-y` makes it an addition network. For multiplication, the discrete logarithm to a primitive
//! root `g` of a prime `p` turns `a · b` into `log a + log b mod (p - 1)` over the nonzero
//! residues, and division into `log a - log b`; the weights are periodic in `log x`, not in `x`
//! (Nanda et al. 2023, Gromov 2023). A [`Basis`] lists, for each coordinate `y` in `0..m`, the
//! residue of operand a, of operand b and of the result it stands for, so that
//! `c[y_a + y_b mod m]` is the result of `a[y_a] ∘ b[y_b]`.
//!
//! [`Basis::view`] reads a network in these coordinates as an addition network mod `m`: every
//! analysis written for addition (fits, phases, embeddings, heatmaps) runs on the view unchanged.
//! [`Basis::unview`] writes a changed view back; residues with no coordinate (0, under a discrete
//! log) keep their weights. Operations with no such law (`a² + ab + b²`, `a³ + ab`, custom ones)
//! get the identity: the analyses then say how far from periodic the weights are.
//!
//! # Example
//! ```
//! use grokking::{analysis::basis::Basis, Operation};
//! let basis = Basis::for_operation(Operation::Mul, 7);
//! assert_eq!(basis.m(), 6); // discrete log to the root 3: 1, 3, 2, 6, 4, 5
//! assert_eq!(basis.a(), &[1, 3, 2, 6, 4, 5]);
//! // a[1] · b[2] = 3 · 2 = 6 = c[1 + 2]
//! assert_eq!(basis.a()[1] * basis.b()[2] % 7, basis.c()[3]);
//! ```

use serde::{Deserialize, Serialize};

use crate::{
    model::MlpWeights,
    operation::{powers, primitive_root, Operation},
};

/// Which relabelling a [`Basis`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BasisKind {
    /// The residues themselves, `m = p`.
    Identity,
    /// The residues, operand b read at `-y` (`a - b = a + (-b)`), `m = p`.
    IdentityNegatedB,
    /// `y = log_g x` over the nonzero residues, `m = p - 1`.
    DiscreteLog {
        /// The primitive root.
        root: usize,
    },
    /// `y = log_g x`, operand b read at `-y` (`a / b = a · b⁻¹`), `m = p - 1`.
    DiscreteLogNegatedB {
        /// The primitive root.
        root: usize,
    },
}

/// Coordinates in which the operation is addition mod [`Basis::m`]. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Basis {
    kind: BasisKind,
    p: usize,
    a: Vec<usize>,
    b: Vec<usize>,
    c: Vec<usize>,
}

impl Basis {
    /// The residues themselves.
    pub fn identity(p: usize) -> Self {
        let ids: Vec<usize> = (0..p).collect();
        Basis {
            kind: BasisKind::Identity,
            p,
            a: ids.clone(),
            b: ids.clone(),
            c: ids,
        }
    }

    /// The coordinates in which `operation` is addition: the identity for `add` (and for the
    /// operations with no such law), the identity with b negated for `sub`, the discrete log for
    /// `mul` and (b negated) `div` when `p` is prime. For a composite `p`, `mul` gets the identity.
    pub fn for_operation(operation: Operation, p: usize) -> Self {
        let negate = |v: &[usize]| -> Vec<usize> {
            let m = v.len();
            (0..m).map(|y| v[(m - y) % m]).collect()
        };
        let root = primitive_root(p).filter(|_| p > 2);
        match (operation, root) {
            (Operation::Sub, _) => {
                let mut basis = Basis::identity(p);
                basis.b = negate(&basis.b);
                basis.kind = BasisKind::IdentityNegatedB;
                basis
            }
            (Operation::Mul | Operation::Div, Some(root)) => {
                let logs = powers(root, p);
                let div = matches!(operation, Operation::Div);
                Basis {
                    kind: if div {
                        BasisKind::DiscreteLogNegatedB { root }
                    } else {
                        BasisKind::DiscreteLog { root }
                    },
                    p,
                    b: if div { negate(&logs) } else { logs.clone() },
                    a: logs.clone(),
                    c: logs,
                }
            }
            _ => Basis::identity(p),
        }
    }

    /// Which relabelling this is.
    pub fn kind(&self) -> BasisKind {
        self.kind
    }

    /// A short description: `identity`, `discrete log to 3`, ...
    pub fn name(&self) -> String {
        match self.kind {
            BasisKind::Identity => "identity".into(),
            BasisKind::IdentityNegatedB => "identity, b negated".into(),
            BasisKind::DiscreteLog { root } => format!("discrete log to {root}"),
            BasisKind::DiscreteLogNegatedB { root } => format!("discrete log to {root}, b negated"),
        }
    }

    /// Whether this is the plain identity (a view is then the weights themselves).
    pub fn is_identity(&self) -> bool {
        self.kind == BasisKind::Identity
    }

    /// The modulus of the coordinates: `p`, or `p - 1` under a discrete log.
    pub fn m(&self) -> usize {
        self.a.len()
    }

    /// The modulus of the residues.
    pub fn p(&self) -> usize {
        self.p
    }

    /// Operand a's residue at each coordinate, `[m]`.
    pub fn a(&self) -> &[usize] {
        &self.a
    }

    /// Operand b's residue at each coordinate, `[m]`.
    pub fn b(&self) -> &[usize] {
        &self.b
    }

    /// The result's residue at each coordinate, `[m]`.
    pub fn c(&self) -> &[usize] {
        &self.c
    }

    /// The coordinate of each residue of operand a, b and of the result (`None` for a residue
    /// with no coordinate).
    ///
    /// # Shapes
    /// Each `[p]`.
    pub fn coordinates(&self) -> [Vec<Option<usize>>; 3] {
        [&self.a, &self.b, &self.c].map(|residues| {
            let mut out = vec![None; self.p];
            for (y, &x) in residues.iter().enumerate() {
                out[x] = Some(y);
            }
            out
        })
    }

    /// `weights` read in these coordinates: an addition network mod [`Basis::m`] with
    /// `fc1[n, y] = fc1[n, a[y]]`, `fc1[n, m + y] = fc1[n, p + b[y]]`, `fc2[y, n] = fc2[c[y], n]`.
    ///
    /// # Panics
    /// If `weights` are for another modulus.
    pub fn view(&self, weights: &MlpWeights) -> MlpWeights {
        assert_eq!(weights.p(), self.p, "weights for another modulus");
        if self.is_identity() {
            return weights.clone();
        }
        let (p, m, h) = (self.p, self.m(), weights.d_hidden());
        let mut fc1 = Vec::with_capacity(h * 2 * m);
        for row in weights.fc1().chunks_exact(2 * p) {
            fc1.extend(self.a.iter().map(|&x| row[x]));
            fc1.extend(self.b.iter().map(|&x| row[p + x]));
        }
        let mut fc2 = Vec::with_capacity(m * h);
        for &x in &self.c {
            fc2.extend_from_slice(&weights.fc2()[x * h..][..h]);
        }
        MlpWeights::new(m, h, fc1, fc2).expect("a view keeps the weights' shape")
    }

    /// `original` with the weights at every coordinate replaced by `view`'s (the inverse of
    /// [`Basis::view`]); residues with no coordinate keep `original`'s weights.
    ///
    /// # Panics
    /// If `original` is for another modulus or `view` has not `m` residues and `original`'s width.
    pub fn unview(&self, view: &MlpWeights, original: &MlpWeights) -> MlpWeights {
        assert_eq!(original.p(), self.p, "weights for another modulus");
        assert_eq!(view.p(), self.m(), "a view has m residues");
        assert_eq!(
            view.d_hidden(),
            original.d_hidden(),
            "view and weights differ in width"
        );
        if self.is_identity() {
            return view.clone();
        }
        let mut out = original.clone();
        for n in 0..view.d_hidden() {
            let [a, b, c] = self.unview_neuron(
                [view.input_a(n), view.input_b(n), view.output(n)],
                [original.input_a(n), original.input_b(n), original.output(n)],
            );
            out.set_neuron(n, &a, &b, &c);
        }
        out
    }

    /// One neuron's `[input a, input b, output]` vectors given in coordinates (`[m]` each),
    /// written over `original`'s (`[p]` each) at the residues they stand for.
    ///
    /// # Panics
    /// If a vector is shorter than its shape says.
    pub fn unview_neuron(&self, view: [Vec<f64>; 3], original: [Vec<f64>; 3]) -> [Vec<f64>; 3] {
        let mut out = original;
        for ((target, source), residues) in
            out.iter_mut().zip(&view).zip([&self.a, &self.b, &self.c])
        {
            for (y, &x) in residues.iter().enumerate() {
                target[x] = source[y];
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operation::Operation;

    /// In every basis, `a[y1] ∘ b[y2] = c[y1 + y2 mod m]` for the operation it is made for.
    #[test]
    fn each_basis_turns_its_operation_into_addition() {
        for p in [5, 7, 11, 13] {
            for op in [
                Operation::Add,
                Operation::Sub,
                Operation::Mul,
                Operation::Div,
            ] {
                let basis = Basis::for_operation(op, p);
                let labels = op.labels(p).unwrap();
                let m = basis.m();
                for y1 in 0..m {
                    for y2 in 0..m {
                        let (a, b) = (basis.a()[y1], basis.b()[y2]);
                        assert_eq!(
                            labels[a * p + b],
                            Some(basis.c()[(y1 + y2) % m] as u32),
                            "{op} p = {p} ({})",
                            basis.name()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn unview_inverts_view_and_keeps_residues_without_a_coordinate() {
        let p = 7;
        let fc1: Vec<f32> = (0..3 * 2 * p).map(|v| v as f32).collect();
        let fc2: Vec<f32> = (0..p * 3).map(|v| -(v as f32)).collect();
        let weights = MlpWeights::new(p, 3, fc1, fc2).unwrap();
        let basis = Basis::for_operation(Operation::Div, p);
        let view = basis.view(&weights);
        assert_eq!(view.p(), 6);
        assert_eq!(basis.unview(&view, &weights), weights);
        let zeroed = MlpWeights::new(6, 3, vec![0.0; 36], vec![0.0; 18]).unwrap();
        let back = basis.unview(&zeroed, &weights);
        // Residue 0 keeps its weights; every other one is overwritten.
        assert_eq!(back.input_a(1)[0], weights.input_a(1)[0]);
        assert_eq!(back.output(2)[0], weights.output(2)[0]);
        assert!(back.input_b(1)[1..].iter().all(|&v| v == 0.0));
    }
}
