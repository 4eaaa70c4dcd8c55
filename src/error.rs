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
        human(.needed),
        human(.available)
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
    #[error("--backend {backend}: the backend cannot run on this machine: {reason}")]
    Device {
        /// The backend's name ([`BackendKind::name`](crate::device::BackendKind::name)).
        backend: String,
        /// The first clause of the backend's own failure message.
        reason: String,
    },
    /// A backend this build does not have: its cargo feature is off.
    #[error("backend `{backend}` is not compiled in; rebuild with `--features {backend}`")]
    NotCompiled {
        /// The backend's name, which is also its cargo feature's.
        backend: &'static str,
    },
    /// A run folder that cannot be used as asked: a finished run to resume, snapshots that the
    /// resumed run would stop keeping.
    #[error("{path}: {reason}")]
    Run {
        /// The run's folder.
        path: PathBuf,
        /// What stands in the way.
        reason: String,
    },
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

/// A byte count for people: `1.5 GB`, `730 MB`, `12 kB` (decimal units).
fn human(bytes: &u64) -> String {
    let b = *bytes as f64;
    match b {
        b if b >= 1e12 => format!("{:.1} TB", b / 1e12),
        b if b >= 1e9 => format!("{:.1} GB", b / 1e9),
        b if b >= 1e6 => format!("{:.0} MB", b / 1e6),
        b => format!("{:.0} kB", (b / 1e3).ceil()),
    }
}

/// `Result` with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human(&904_000_000_000), "904.0 GB");
        assert_eq!(human(&8_136_000_000_000), "8.1 TB");
        assert_eq!(human(&25_000_000), "25 MB");
        assert_eq!(human(&1_200), "2 kB");
    }
}
