//! The crate's error type: every fallible operation on user input returns [`Result`].

use std::path::PathBuf;

/// Everything that can go wrong with user input, files and configurations.
///
/// Variants name the operation and carry the offending value, so the one-line
/// `Display` form is enough for a command-line user to fix the mistake.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The modulus is below 2 or too large for p² rows to be indexed.
    #[error("modulus p = {p} is out of range: {reason}")]
    InvalidModulus {
        /// The modulus that was asked for.
        p: usize,
        /// Why it cannot be used.
        reason: String,
    },
    /// The train fraction is not strictly inside (0, 1) or leaves one side of the split empty.
    #[error("train fraction {fraction} is invalid: {reason}")]
    InvalidTrainFraction {
        /// The fraction that was asked for.
        fraction: f64,
        /// Why it cannot be used.
        reason: String,
    },
    /// An operation that is not defined for the modulus, or a name that is no operation.
    #[error("operation {operation} cannot be used{}: {reason}", if *.p > 0 { format!(" with p = {}", .p) } else { String::new() })]
    InvalidOperation {
        /// The operation's name.
        operation: String,
        /// The modulus (0 where none is involved).
        p: usize,
        /// Why.
        reason: String,
    },
    /// A configuration value is outside its domain (zero width, zero batch, negative rate, ...).
    #[error("invalid {field} = {value}: {reason}")]
    InvalidConfig {
        /// The name of the field, as on the command line.
        field: &'static str,
        /// The offending value, formatted.
        value: String,
        /// What the value must be.
        reason: &'static str,
    },
    /// Weights whose shapes do not describe an [`Mlp`](crate::Mlp).
    #[error("weights do not fit the model: {0}")]
    Shape(String),
    /// A file that exists but does not hold what it should.
    #[error("{path}: {reason}")]
    Format {
        /// The file that was read.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An analysis that cannot run on the data it was given (too few points, a library failure).
    #[error("{what}: {reason}")]
    Analysis {
        /// The analysis that failed.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A configuration or file that needs more memory than this machine can give
    /// ([`memory::check`](crate::memory::check)).
    #[error(
        "{what} needs about {} of memory, more than the {} this machine has available",
        crate::memory::human(.needed),
        crate::memory::human(.available)
    )]
    InsufficientMemory {
        /// What needs it (a configuration, a file).
        what: String,
        /// The estimate, in bytes.
        needed: u64,
        /// What the machine has available, in bytes.
        available: u64,
    },
    /// A backend that cannot run on this machine (a GPU backend without its driver).
    #[error("the backend cannot run on this machine: {0}")]
    Device(String),
    /// An operating-system error while reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// `Result` with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
