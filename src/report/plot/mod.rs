//! SVG charts of plain numbers: [`line_chart`] (several series, linear or log₁₀ *y* axis) and
//! [`heatmap`] (rows × columns of values, e.g. layer × training step, with a colour bar).
//!
//! The functions take plain `f64` data and know nothing about networks, so examples, reports
//! and your own code can all call them. Charts are drawn with [`plotters`]' SVG backend; text
//! is written as SVG `<text>` elements, so no system fonts are needed.
//!
//! Every chart is first rendered in memory and only then written, so an invalid input returns
//! an [`Error`](crate::Error) and leaves no file behind. The `*_svg` variants
//! ([`line_chart_svg`], [`heatmap_svg`]) return the SVG document as a `String`, e.g. to embed
//! it in an HTML report.
//!
//! ```
//! use gradflow::report::plot::{line_chart, ChartSpec, Scale, Series};
//!
//! let dir = std::env::temp_dir().join(format!("gradflow-doc-plot-{}", std::process::id()));
//! let path = dir.join("grad_norm.svg");
//! let spec = ChartSpec::new("Gradient norm by layer")
//!     .x_label("layer")
//!     .y_label("‖∂L/∂W‖")
//!     .y_scale(Scale::Log10);
//! let series = [
//!     Series::indexed("sigmoid", &[1e-7, 1e-5, 1e-3, 1e-1]),
//!     Series::indexed("relu", &[0.2, 0.3, 0.25, 0.3]),
//! ];
//! line_chart(&path, &spec, &series)?;
//! assert!(std::fs::read_to_string(&path).unwrap().starts_with("<svg"));
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), gradflow::Error>(())
//! ```

mod axis;
mod heatmap;
mod line;
mod output;
mod style;

pub use axis::Scale;
pub use heatmap::{HeatmapLine, HeatmapSpec, heatmap, heatmap_svg};
pub use line::{ChartSpec, Series, line_chart, line_chart_svg};

#[cfg(test)]
pub(crate) mod test_util;
