//! The binary operation a data set is labelled with: `c = a ∘ b mod p`.
//!
//! The built-in operations are the ones of Power et al. (2022) that a one-hidden-layer MLP can
//! learn: addition (the notebook's), subtraction, multiplication, division, `a² + ab + b²` and
//! `a³ + ab`; [`Operation::Custom`] takes any function of a library user's. An operation may leave
//! pairs undefined (division by 0): the data set then holds only the defined pairs. Division needs
//! every nonzero `b` to be invertible, so a prime modulus; [`Operation::check`] says so as an error.
//!
//! # Example
//! ```
//! use grokking::{ModularDataset, Operation};
//! let data = ModularDataset::with_operation(7, Operation::Div, 0.5, 0)?;
//! assert_eq!(data.len(), 7 * 6); // b = 0 is left out
//! let row = data.rows(grokking::Split::Full)[10];
//! let (a, b) = data.pair(row);
//! assert_eq!(data.label(row) * b % 7, a); // c = a / b, so c·b = a
//! assert!(ModularDataset::with_operation(8, Operation::Div, 0.5, 0).is_err());
//! # Ok::<(), grokking::Error>(())
//! ```

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// A label function of a library user's: `label(a, b, p)` is `a ∘ b mod p`, or `None` where the
/// operation is undefined (the pair is left out of the data set). It must return values below
/// `p`; [`ModularDataset::with_operation`](crate::ModularDataset::with_operation) checks.
#[derive(Clone, Copy)]
pub struct CustomOperation {
    /// The name recorded in config.json and sweep.csv.
    pub name: &'static str,
    /// The label of `(a, b)` for modulus `p`.
    pub label: fn(a: usize, b: usize, p: usize) -> Option<usize>,
}

impl fmt::Debug for CustomOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CustomOperation({})", self.name)
    }
}

/// The operation `c = a ∘ b mod p` a data set is labelled with. See the [module docs](self).
///
/// Serialised (config.json, sweep.csv, `--operation`) as its [`Operation::name`]. A custom
/// operation is written by name but cannot be read back from a file: its function is code.
#[derive(Debug, Clone, Copy, Default)]
pub enum Operation {
    /// `a + b` (the notebook's).
    #[default]
    Add,
    /// `a - b`.
    Sub,
    /// `a · b`.
    Mul,
    /// `a · b⁻¹`, for `b ≠ 0`; needs a prime `p`.
    Div,
    /// `a² + ab + b²`.
    Quadratic,
    /// `a³ + ab`.
    Cubic,
    /// A function of the user's.
    Custom(CustomOperation),
}

impl PartialEq for Operation {
    /// Operations are equal when their names are.
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Operation {
    /// The built-in operations, in the order of the module docs.
    pub const BUILT_IN: [Operation; 6] = [
        Operation::Add,
        Operation::Sub,
        Operation::Mul,
        Operation::Div,
        Operation::Quadratic,
        Operation::Cubic,
    ];

    /// The name used on the command line and in files: `add`, `sub`, `mul`, `div`, `quadratic`,
    /// `cubic`, or a custom operation's own.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Add => "add",
            Operation::Sub => "sub",
            Operation::Mul => "mul",
            Operation::Div => "div",
            Operation::Quadratic => "quadratic",
            Operation::Cubic => "cubic",
            Operation::Custom(c) => c.name,
        }
    }

    /// The formula, for figures and messages: `(a + b) mod p`, ...
    pub fn formula(&self) -> String {
        match self {
            Operation::Add => "(a + b) mod p".into(),
            Operation::Sub => "(a - b) mod p".into(),
            Operation::Mul => "(a · b) mod p".into(),
            Operation::Div => "(a / b) mod p, b ≠ 0".into(),
            Operation::Quadratic => "(a² + ab + b²) mod p".into(),
            Operation::Cubic => "(a³ + ab) mod p".into(),
            Operation::Custom(c) => format!("{}(a, b) mod p", c.name),
        }
    }

    /// Checks that the operation is defined for modulus `p`.
    ///
    /// # Errors
    /// [`Error::InvalidOperation`] for division with a `p` that is not prime (some nonzero `b`
    /// would have no inverse).
    pub fn check(&self, p: usize) -> Result<()> {
        if matches!(self, Operation::Div) && !is_prime(p) {
            return Err(Error::InvalidOperation {
                operation: self.name().into(),
                p,
                reason: "division needs a prime modulus, so that every b ≠ 0 has an inverse".into(),
            });
        }
        Ok(())
    }

    /// The label of every pair, row `a * p + b`: `Some(c)` or `None` where the operation is
    /// undefined.
    ///
    /// # Shapes
    /// Returns `[p²]`.
    ///
    /// # Errors
    /// [`Error::InvalidOperation`] if the operation is not defined for `p` ([`Operation::check`])
    /// or a custom operation returns a value not below `p`.
    pub fn labels(&self, p: usize) -> Result<Vec<Option<u32>>> {
        self.check(p)?;
        // b⁻¹ for division (p of them: b runs over them below).
        let inverse = match self {
            Operation::Div => inverses(p),
            _ => vec![0; p],
        };
        let m = |x: u128| (x % p as u128) as u32;
        let mut out = Vec::with_capacity(p * p);
        for a in 0..p {
            let a128 = a as u128;
            for (b, &b_inverse) in inverse.iter().enumerate() {
                let b128 = b as u128;
                out.push(match self {
                    Operation::Add => Some(m(a128 + b128)),
                    Operation::Sub => Some(m(a128 + p as u128 - b128)),
                    Operation::Mul => Some(m(a128 * b128)),
                    Operation::Div => (b != 0).then(|| m(a128 * b_inverse as u128)),
                    Operation::Quadratic => Some(m(a128 * a128 + a128 * b128 + b128 * b128)),
                    Operation::Cubic => Some(m(a128 * a128 % p as u128 * a128 + a128 * b128)),
                    Operation::Custom(c) => match (c.label)(a, b, p) {
                        Some(v) if v < p => Some(v as u32),
                        None => None,
                        Some(v) => {
                            return Err(Error::InvalidOperation {
                                operation: c.name.into(),
                                p,
                                reason: format!("it labels ({a}, {b}) with {v}, not below p"),
                            })
                        }
                    },
                });
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Operation {
    type Err = Error;

    /// A built-in operation by [`Operation::name`].
    fn from_str(s: &str) -> Result<Self> {
        Operation::BUILT_IN
            .into_iter()
            .find(|o| o.name() == s)
            .ok_or_else(|| Error::InvalidOperation {
                operation: s.into(),
                p: 0,
                reason: format!(
                    "not a built-in operation (those are {}); a custom operation cannot be read back from a file",
                    Operation::BUILT_IN.map(|o| o.name()).join(", ")
                ),
            })
    }
}

impl Serialize for Operation {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Operation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether `n` is prime (trial division; `n` is at most [`MAX_P`](crate::data::MAX_P) here).
pub fn is_prime(n: usize) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

/// `b⁻¹ mod p` for every `b` in `1..p` (entry 0 is 0), for a prime `p`: `inv[b] = -(p / b) ·
/// inv[p mod b]`.
fn inverses(p: usize) -> Vec<usize> {
    let mut inv = vec![0usize; p];
    if p > 1 {
        inv[1] = 1;
    }
    for b in 2..p {
        inv[b] = (p - (p / b) * inv[p % b] % p) % p;
    }
    inv
}

/// The distinct prime factors of `n`, ascending.
fn prime_factors(mut n: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut d = 2;
    while d * d <= n {
        if n.is_multiple_of(d) {
            out.push(d);
            while n.is_multiple_of(d) {
                n /= d;
            }
        }
        d += 1;
    }
    if n > 1 {
        out.push(n);
    }
    out
}

/// `base^exp mod p`.
fn pow_mod(base: usize, mut exp: usize, p: usize) -> usize {
    let (mut result, mut base, p) = (1u64 % p as u64, base as u64 % p as u64, p as u64);
    while exp > 0 {
        if exp & 1 == 1 {
            result = result * base % p;
        }
        base = base * base % p;
        exp >>= 1;
    }
    result as usize
}

/// The smallest primitive root of a prime `p` (a generator of the multiplicative group, of order
/// `p - 1`); `None` if `p` is not prime.
///
/// # Example
/// ```
/// assert_eq!(grokking::operation::primitive_root(113), Some(3));
/// assert_eq!(grokking::operation::primitive_root(7), Some(3));
/// assert_eq!(grokking::operation::primitive_root(9), None);
/// ```
pub fn primitive_root(p: usize) -> Option<usize> {
    if !is_prime(p) {
        return None;
    }
    if p == 2 {
        return Some(1);
    }
    let factors = prime_factors(p - 1);
    (2..p).find(|&g| factors.iter().all(|&q| pow_mod(g, (p - 1) / q, p) != 1))
}

/// `g^y mod p` for `y = 0..p-1`: the residue at each discrete-log coordinate.
///
/// # Shapes
/// Returns `[p - 1]`.
///
/// # Panics
/// If `p` is 0.
pub fn powers(g: usize, p: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(p - 1);
    let mut x = 1usize;
    for _ in 0..p - 1 {
        out.push(x);
        x = x * g % p;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primes_roots_and_inverses() {
        let primes: Vec<usize> = (0..40).filter(|&n| is_prime(n)).collect();
        assert_eq!(primes, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37]);
        for p in [2, 3, 5, 7, 11, 13, 113, 46_337] {
            let g = primitive_root(p).unwrap();
            let mut seen = powers(g, p);
            seen.sort_unstable();
            assert_eq!(seen, (1..p).collect::<Vec<_>>(), "p = {p}, g = {g}");
            let inv = inverses(p);
            assert!((1..p).all(|b| b * inv[b] % p == 1));
        }
    }
}
