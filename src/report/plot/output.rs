//! Writing a rendered SVG document to disk, and the errors drawing can produce.

use std::path::Path;

use crate::{Error, Result};

/// Smallest chart size, in pixels, that leaves room for the title, the axis labels and the
/// plotting area.
pub(super) const MIN_SIZE: (u32, u32) = (200, 150);

/// Refuses a chart `size` below [`MIN_SIZE`].
pub(super) fn check_size(component: &str, size: (u32, u32)) -> Result<()> {
    if size.0 < MIN_SIZE.0 || size.1 < MIN_SIZE.1 {
        return Err(Error::config(
            component,
            "size",
            format!(
                "{}×{} pixels is too small; at least {}×{} is needed",
                size.0, size.1, MIN_SIZE.0, MIN_SIZE.1
            ),
        ));
    }
    Ok(())
}

/// An [`Error::Data`] for data that cannot be drawn, naming `target` (the file or chart).
pub(super) fn data_error(target: &str, reason: impl Into<String>) -> Error {
    Error::Data { source_name: target.to_string(), reason: reason.into() }
}

/// Converts a plotters drawing error (for example a `DrawingAreaErrorKind`) into an
/// [`Error::Data`] naming `target`.
pub(super) fn drawing_error(target: &str, error: impl std::fmt::Display) -> Error {
    data_error(target, format!("drawing the chart failed: {error}"))
}

/// How errors name a chart rendered to a string: by its title.
pub(super) fn chart_name(title: &str) -> String {
    if title.is_empty() { "chart".to_string() } else { format!("chart \"{title}\"") }
}

/// Writes `svg` to `path`, creating the parent directory if it is missing.
pub(super) fn write_svg(path: &Path, svg: &str) -> Result<()> {
    crate::io::write_atomically(path, svg.as_bytes())
}
