//! Whether a backend can run on this machine.

use burn::tensor::{backend::Backend, Tensor};

use crate::{
    error::{Error, Result},
    panics::catch_panics,
};

/// The most characters of a backend's own failure message that an error keeps.
const MAX_REASON: usize = 240;

/// Where the first clause of a backend's message ends: its messages run on into library search
/// lists and debug dumps.
const CLAUSE_ENDS: [&str; 3] = [". ", " - ", ": "];

/// Checks that backend `B` runs on `device` by writing one value and reading it back.
///
/// A GPU backend on a machine without its driver (no CUDA library, no Vulkan adapter) does not
/// return an error in Burn 0.21: its device thread panics on first use. Call this before any other
/// work on a backend the user chose, to get an error instead of a panic and a backtrace.
///
/// # Errors
/// [`Error::Device`] with the first clause of the backend's own failure message.
///
/// # Example
/// ```
/// use burn::backend::Flex;
/// grokking::device::check::<Flex>(&Default::default())?;
/// # Ok::<(), grokking::Error>(())
/// ```
pub fn check<B: Backend>(device: &B::Device) -> Result<()> {
    let round_trip = catch_panics(|| {
        Tensor::<B, 1>::from_floats([1.5], device)
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
    });
    let reason = match round_trip {
        Ok(Ok(values)) if values == [1.5] => return Ok(()),
        Ok(Ok(values)) => format!("1.5 written to the device was read back as {values:?}"),
        Ok(Err(e)) => format!("cannot read a tensor back: {e:?}"),
        Err(message) => first_clause(&message),
    };
    Err(Error::Device(reason))
}

/// The first clause of `text` (up to the first of [`CLAUSE_ENDS`] or line break), at most
/// [`MAX_REASON`] characters of it.
fn first_clause(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let end = CLAUSE_ENDS
        .iter()
        .filter_map(|end| line.find(end))
        .min()
        .unwrap_or(line.len());
    let clause = &line[..end];
    match clause.char_indices().nth(MAX_REASON) {
        Some((cut, _)) => format!("{}…", &clause[..cut]),
        None => clause.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_first_clause_cut_short() {
        // The messages wgpu and cudarc panic with on a machine without a GPU.
        assert_eq!(
            first_clause("No possible adapter available for backend. Falling back: NotFound {..}"),
            "No possible adapter available for backend"
        );
        assert_eq!(
            first_clause(
                "Unable to dynamically load the \"cuda\" shared library - searched for [..]"
            ),
            "Unable to dynamically load the \"cuda\" shared library"
        );
        assert_eq!(first_clause("no driver\nstack backtrace"), "no driver");
        let long = "x".repeat(1000);
        assert_eq!(first_clause(&long).chars().count(), MAX_REASON + 1);
        assert!(first_clause(&long).ends_with('…'));
    }
}
