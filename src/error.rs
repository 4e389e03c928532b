//! The crate's error type and `Result` alias.

use std::path::PathBuf;

/// Everything that can go wrong in gradflow. Every variant names *where* (the layer path,
/// the field, the file) and *what* was wrong, so that a message is actionable on its own.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An array had the wrong shape for the layer (or loss, optimizer, …) it was given to.
    #[error("{layer}: shape mismatch for {what}: expected {expected}, got {actual}")]
    ShapeMismatch {
        /// The layer or component, e.g. `"Linear(64→32)"` or `"3.branch.1 (Linear)"`.
        layer: String,
        /// Which array, e.g. `"input"` or `"grad_output"`.
        what: &'static str,
        /// The expected shape, e.g. `"(batch, 64)"`.
        expected: String,
        /// The shape that was given, e.g. `"(32, 10)"`.
        actual: String,
    },
    /// A configuration value was out of range; refused at construction.
    #[error("{component}: invalid `{field}`: {reason}")]
    InvalidConfig {
        /// The component being configured, e.g. `"Linear"` or `"Sgd"`.
        component: String,
        /// The field's name, e.g. `"momentum"`.
        field: &'static str,
        /// What was wrong, including the value given.
        reason: String,
    },
    /// `backward` was called on a layer that has not run `forward` (in this pass).
    #[error("{layer}: backward called before forward")]
    BackwardBeforeForward {
        /// The layer.
        layer: String,
    },
    /// A NaN or infinity appeared where a finite value was required.
    #[error("non-finite value in {location}: {detail}")]
    NonFinite {
        /// Where it was found, e.g. `"loss CrossEntropy"` or `"layer 4 (Linear), backward, step 12"`.
        location: String,
        /// What was non-finite.
        detail: String,
    },
    /// A hook panicked or returned something invalid. The pass was aborted at that layer.
    #[error("hook at layer {path}: {reason}")]
    Hook {
        /// The path of the layer whose event the hook was handling.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The targets given to a loss or the trainer do not fit it.
    #[error("{component}: invalid target: {reason}")]
    InvalidTarget {
        /// The loss or helper.
        component: String,
        /// What was wrong.
        reason: String,
    },
    /// A data file or embedded data set could not be parsed.
    #[error("{source_name}: {reason}")]
    Data {
        /// The file (or embedded resource) name.
        source_name: String,
        /// What was wrong, with the line or byte offset where known.
        reason: String,
    },
    /// No layer is at the path asked for (e.g. [`crate::Sequential::layer`]).
    #[error("no layer at `{path}`: {reason}")]
    NoSuchLayer {
        /// The dotted path asked for, e.g. `"3.branch.5"`.
        path: String,
        /// Which segment was not found and what is there instead.
        reason: String,
    },
    /// The layer at a path is not of the type asked for (e.g. [`crate::Sequential::layer`]).
    #[error("layer `{path}` is {actual}, not {expected}")]
    WrongLayerType {
        /// The dotted path of the layer, e.g. `"3"`.
        path: String,
        /// The type asked for, e.g. `"Highway<f32>"`.
        expected: String,
        /// What the layer is: its kind and description, e.g. `"Linear (Linear(64→64))"`.
        actual: String,
    },
    /// An I/O error while reading or writing a file.
    #[error("{}", io_message(path, source))]
    Io {
        /// The file (empty when the error came through `?` from code that did not say which
        /// file: `From<std::io::Error>`).
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

fn io_message(path: &std::path::Path, source: &std::io::Error) -> String {
    if path.as_os_str().is_empty() {
        format!("I/O error: {source}")
    } else {
        format!("{}: {source}", path.display())
    }
}

/// An I/O error from the caller's own code, so that `?` works on it in a function returning
/// `gradflow::Result`. It names no file (gradflow's own functions always do); use
/// [`Error::io`] to name one.
///
/// ```
/// fn save_notes(path: &std::path::Path) -> gradflow::Result<()> {
///     std::fs::write(path, "lr 0.01")?;                                   // no file named
///     std::fs::read(path).map_err(|e| gradflow::Error::io(path, e))?;    // names it
///     Ok(())
/// }
/// let err = save_notes(std::path::Path::new("/nonexistent/dir/notes.txt")).unwrap_err();
/// assert!(err.to_string().starts_with("I/O error: "), "{err}");
/// ```
impl From<std::io::Error> for Error {
    fn from(source: std::io::Error) -> Self {
        Error::Io { path: PathBuf::new(), source }
    }
}

/// `Result<T, gradflow::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::InvalidConfig`].
    pub fn config(component: impl Into<String>, field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig { component: component.into(), field, reason: reason.into() }
    }

    /// [`Error::Io`] naming `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// Shorthand for [`Error::ShapeMismatch`].
    pub fn shape(
        layer: impl Into<String>,
        what: &'static str,
        expected: impl Into<String>,
        actual: &[usize],
    ) -> Self {
        Error::ShapeMismatch {
            layer: layer.into(),
            what,
            expected: expected.into(),
            actual: format_shape(actual),
        }
    }
}

/// Formats a shape as `(a, b, c)`.
pub fn format_shape(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("({})", parts.join(", "))
}

impl Error {
    /// Prefixes the layer named in this error with the child name `segment`, so that an error
    /// raised deep in a network names the full path (e.g. `3.branch.1: Linear(64→32)`).
    pub fn at(mut self, segment: &dyn std::fmt::Display) -> Self {
        match &mut self {
            Error::ShapeMismatch { layer, .. } | Error::BackwardBeforeForward { layer } => {
                *layer = join_path(segment, layer);
            }
            Error::InvalidConfig { component, .. } => *component = join_path(segment, component),
            _ => {}
        }
        self
    }
}

fn join_path(segment: &dyn std::fmt::Display, rest: &str) -> String {
    // `rest` is either "path: description", "path.more: …" or just a description.
    match rest.split_once(": ") {
        Some((path, desc)) if !path.contains(' ') && !path.contains('(') => {
            format!("{segment}.{path}: {desc}")
        }
        _ => format!("{segment}: {rest}"),
    }
}

/// The message of a caught panic (its `&str` or `String` payload), for errors that report a
/// panic in user code (a hook, a key map's function).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".into())
}
