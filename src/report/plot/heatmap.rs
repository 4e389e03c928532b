//! [`heatmap`]: a grid of values (e.g. gradient norm per layer and training step) drawn as
//! coloured cells, with a colour bar.

use std::ops::Range;
use std::path::Path;

use ndarray::ArrayView2;
use plotters::coord::Shift;
use plotters::coord::combinators::BindKeyPoints;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::{Scale, format_number, format_scientific, nice_stride};
use super::output::{chart_name, check_size, data_error, drawing_error, write_svg};
use super::style::{FONT, LABEL_SIZE, MISSING_COLOR, TICK_SIZE, TITLE_SIZE, char_width, viridis};
use crate::Result;

/// What a [`heatmap`] shows around its cells: title, axis descriptions, colour scale, size.
///
/// ```
/// use gradflow::report::plot::{HeatmapSpec, Scale};
///
/// let spec = HeatmapSpec::new("Gradient norm per layer")
///     .x_label("step")
///     .y_label("layer")
///     .value_label("‖∂L/∂W‖")
///     .color_scale(Scale::Log10);
/// assert_eq!(spec.size, (800, 500));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct HeatmapSpec {
    /// Title drawn above the chart (none when empty).
    pub title: String,
    /// Description of the *x* axis (the columns), e.g. `"step"`.
    pub x_label: String,
    /// Description of the *y* axis (the rows), e.g. `"layer"`.
    pub y_label: String,
    /// What the colours measure, written along the colour bar, e.g. `"gradient norm"`.
    pub value_label: String,
    /// How values map to colours (default [`Scale::Linear`]); [`Scale::Log10`] makes equal
    /// ratios equal colour steps, which suits gradient norms spanning many decades.
    pub color_scale: Scale,
    /// Width and height in pixels (default 800 × 500; at least 200 × 150).
    pub size: (u32, u32),
    /// Lines drawn over the cells (none by default), e.g. a predicted boundary.
    pub lines: Vec<HeatmapLine>,
}

/// A line drawn over a [`heatmap`]'s cells, in *cell coordinates*: `x = c` is the centre of
/// column `c`, `y = r` the centre of row `r` (row 0 at the top), fractions in between; `x = −0.5`
/// is the left edge of the grid. Points outside the grid are left out, breaking the line there.
/// Drawn white with a dark outline, so that it shows on every colour, and named at the top left
/// of the plot.
#[derive(Debug, Clone, PartialEq)]
pub struct HeatmapLine {
    /// What the line shows, e.g. `"6·ξ_c (mean-field)"`.
    pub name: String,
    /// The points, in drawing order.
    pub points: Vec<(f64, f64)>,
}

impl Default for HeatmapSpec {
    fn default() -> Self {
        HeatmapSpec {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            value_label: String::new(),
            color_scale: Scale::Linear,
            size: (800, 500),
            lines: Vec::new(),
        }
    }
}

impl HeatmapSpec {
    /// A heatmap with this title and the defaults for everything else.
    pub fn new(title: impl Into<String>) -> Self {
        HeatmapSpec { title: title.into(), ..HeatmapSpec::default() }
    }

    /// Sets the description of the *x* axis (the columns).
    pub fn x_label(mut self, label: impl Into<String>) -> Self {
        self.x_label = label.into();
        self
    }

    /// Sets the description of the *y* axis (the rows).
    pub fn y_label(mut self, label: impl Into<String>) -> Self {
        self.y_label = label.into();
        self
    }

    /// Sets what the colours measure (shown along the colour bar).
    pub fn value_label(mut self, label: impl Into<String>) -> Self {
        self.value_label = label.into();
        self
    }

    /// Sets how values map to colours.
    pub fn color_scale(mut self, scale: Scale) -> Self {
        self.color_scale = scale;
        self
    }

    /// Sets the size in pixels.
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }

    /// Adds a line over the cells (see [`HeatmapLine`] for its coordinates).
    pub fn line(mut self, name: impl Into<String>, points: impl IntoIterator<Item = (f64, f64)>) -> Self {
        self.lines.push(HeatmapLine { name: name.into(), points: points.into_iter().collect() });
        self
    }
}

/// Draws `values` (`rows.len()` × `columns.len()`) as a grid of coloured cells and writes it
/// as an SVG file at `path`, creating the parent directory if needed.
///
/// Row `r` is labelled `rows[r]` and drawn **top to bottom** in the order given (row 0 at the
/// top, as the array prints); column `c` is labelled with the number `columns[c]` (e.g. a
/// training step) and drawn left to right. Cells have equal widths whatever the spacing of
/// `columns`. When there are too many rows or columns to label each, every 2nd, 5th, 10th, …
/// is labelled.
///
/// # Colours
/// A sequential colour map (viridis: dark purple for the smallest value, yellow for the
/// largest) spans the smallest to the largest value that can be shown, linearly or — with
/// [`Scale::Log10`] — by decades. A colour bar on the right shows the map with the minimum and
/// maximum written in scientific notation (and, on a log scale, the whole decades between).
/// **Cells with no value to show — NaN, ±∞, or `≤ 0` on a log scale — are light grey**, and a
/// grey "no value" swatch under the colour bar says so. If all values are equal, every cell
/// gets the middle colour.
///
/// A cell narrower than a pixel (more columns than the plot is wide) may not be visible:
/// average or subsample long runs first.
///
/// # Errors
/// - [`Error::InvalidConfig`](crate::Error::InvalidConfig) if `spec.size` is below 200 × 150.
/// - [`Error::Data`](crate::Error::Data), naming `path`, if `values` is empty, its shape does
///   not match the numbers of `rows` and `columns`, or no cell has a value that can be shown.
/// - [`Error::Io`](crate::Error::Io), naming the directory or file, if it cannot be written.
///
/// No file is created when an error is returned before writing.
///
/// ```
/// use gradflow::report::plot::{heatmap, HeatmapSpec, Scale};
/// use ndarray::array;
///
/// let dir = std::env::temp_dir().join(format!("gradflow-doc-heatmap-{}", std::process::id()));
/// let norms = array![[1e-6, 1e-6, 2e-6], [1e-3, 5e-4, 4e-4], [0.1, 0.05, 0.04]];
/// let spec = HeatmapSpec::new("Gradient norm").color_scale(Scale::Log10);
/// heatmap(dir.join("norms.svg"), &spec, &["layer 0", "layer 1", "layer 2"], &[0.0, 100.0, 200.0], norms.view())?;
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), gradflow::Error>(())
/// ```
pub fn heatmap<S: AsRef<str>>(
    path: impl AsRef<Path>,
    spec: &HeatmapSpec,
    rows: &[S],
    columns: &[f64],
    values: ArrayView2<'_, f64>,
) -> Result<()> {
    let path = path.as_ref();
    let svg = render(&path.display().to_string(), spec, rows, columns, values)?;
    write_svg(path, &svg)
}

/// Like [`heatmap`], but returns the SVG document instead of writing a file; errors name the
/// chart by its title.
pub fn heatmap_svg<S: AsRef<str>>(
    spec: &HeatmapSpec,
    rows: &[S],
    columns: &[f64],
    values: ArrayView2<'_, f64>,
) -> Result<String> {
    render(&chart_name(&spec.title), spec, rows, columns, values)
}

/// Number of colour steps drawn in the colour bar.
const COLOR_BAR_STEPS: usize = 64;
/// Width of the colour bar itself, in pixels.
const COLOR_BAR_WIDTH: i32 = 18;

/// Maps values to positions `t ∈ [0, 1]` of the colour map.
struct ColorRange {
    scale: Scale,
    min: f64,
    max: f64,
}

impl ColorRange {
    /// Where `value` sits on the colour map; `None` if it cannot be shown.
    fn position(&self, value: f64) -> Option<f64> {
        if !self.scale.can_show(value) {
            return None;
        }
        let (v, lo, hi) = match self.scale {
            Scale::Linear => (value, self.min, self.max),
            Scale::Log10 => (value.log10(), self.min.log10(), self.max.log10()),
        };
        Some(if hi > lo { ((v - lo) / (hi - lo)).clamp(0.0, 1.0) } else { 0.5 })
    }

    fn color(&self, value: f64) -> RGBColor {
        self.position(value).map_or(MISSING_COLOR, viridis)
    }

    /// The labels of the colour bar with their positions: min, max and, on a log scale,
    /// the whole decades in between.
    fn labels(&self) -> Vec<(f64, String)> {
        let mut labels = vec![(0.0, format_scientific(self.min, 3))];
        if self.max > self.min {
            labels.push((1.0, format_scientific(self.max, 3)));
        }
        if self.scale == Scale::Log10 && self.max > self.min {
            let first = self.min.log10().ceil() as i32;
            let last = self.max.log10().floor() as i32;
            for exponent in first..=last {
                let value = 10f64.powi(exponent);
                if let Some(t) = self.position(value) {
                    labels.push((t, format_scientific(value, 3)));
                }
            }
        }
        labels
    }
}

type DrawResult<T> = std::result::Result<T, DrawingAreaErrorKind<std::io::Error>>;

fn render<S: AsRef<str>>(
    target: &str,
    spec: &HeatmapSpec,
    rows: &[S],
    columns: &[f64],
    values: ArrayView2<'_, f64>,
) -> Result<String> {
    check_size("HeatmapSpec", spec.size)?;
    let (n_rows, n_cols) = values.dim();
    if n_rows == 0 || n_cols == 0 {
        return Err(data_error(target, format!("no values to draw (shape ({n_rows}, {n_cols}))")));
    }
    if rows.len() != n_rows || columns.len() != n_cols {
        return Err(data_error(
            target,
            format!(
                "values have shape ({n_rows}, {n_cols}) but there are {} row labels and {} \
                 column labels",
                rows.len(),
                columns.len()
            ),
        ));
    }
    let scale = spec.color_scale;
    let shown = values.iter().copied().filter(|&v| scale.can_show(v));
    let Some((min, max)) = shown.fold(None, |acc: Option<(f64, f64)>, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    }) else {
        let needs = match scale {
            Scale::Linear => "a finite value",
            Scale::Log10 => "a finite value > 0 (log colour scale)",
        };
        return Err(data_error(target, format!("no cell has {needs}")));
    };
    let colors = ColorRange { scale, min, max };
    let any_missing = values.iter().any(|&v| !scale.can_show(v));

    let labels = colors.labels();
    let (width, height) = spec.size;
    let widest_label = labels.iter().map(|(_, l)| l.chars().count()).max().unwrap_or(0) as u32;
    let color_bar_area = 14 + COLOR_BAR_WIDTH as u32 + 8 + widest_label * char_width(TICK_SIZE) + 30;
    let widest_row = rows.iter().map(|r| r.as_ref().chars().count()).max().unwrap_or(0) as u32;
    let y_desc_room = if spec.y_label.is_empty() { 0 } else { LABEL_SIZE + 12 };
    let y_label_area = (widest_row * char_width(TICK_SIZE) + 16 + y_desc_room).clamp(40, width / 3);
    let x_label_area = 48;
    let title_room = if spec.title.is_empty() { 0 } else { TITLE_SIZE + 16 };
    // Approximate size of the plotting area, to decide how many rows and columns to label.
    let plot_width = width.saturating_sub(color_bar_area + y_label_area + 24).max(1) as usize;
    let plot_height = height.saturating_sub(title_room + x_label_area + 24).max(1) as usize;

    let widest_column = columns.iter().map(|&c| format_number(c).chars().count()).max().unwrap_or(1);
    let column_label_px = widest_column * char_width(TICK_SIZE) as usize + 16;
    let column_stride = nice_stride((n_cols * column_label_px).div_ceil(plot_width));
    let row_label_px = TICK_SIZE as usize + 4;
    let row_stride = nice_stride((n_rows * row_label_px).div_ceil(plot_height));

    // Integer coordinates at twice the cell count, so that cell centres are whole numbers
    // (plotters' f64 axes cannot take custom tick positions together with custom labels):
    // cell (r, c) covers x ∈ [2c, 2c + 2] and y ∈ [2(n_rows - 1 - r), 2(n_rows - r)], so row 0
    // is on top, and its centre is (2c + 1, 2(n_rows - 1 - r) + 1).
    let cell_y = |r: usize| 2 * (n_rows - 1 - r) as i64;
    let column_ticks: Vec<i64> = (0..n_cols).step_by(column_stride).map(|c| 2 * c as i64 + 1).collect();
    let row_ticks: Vec<i64> = (0..n_rows).step_by(row_stride).map(|r| cell_y(r) + 1).collect();
    let column_label = |x: &i64| format_number(columns[((*x / 2) as usize).min(n_cols - 1)]);
    let row_label = |y: &i64| {
        let from_bottom = ((*y / 2) as usize).min(n_rows - 1);
        rows[n_rows - 1 - from_bottom].as_ref().to_string()
    };

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, spec.size).into_drawing_area();
        let drawn: DrawResult<()> = (|| {
            root.fill(&WHITE)?;
            let body = if spec.title.is_empty() {
                root.clone()
            } else {
                root.titled(&spec.title, (FONT, TITLE_SIZE))?
            };
            let (chart_area, _) = body.split_horizontally(width.saturating_sub(color_bar_area));
            let mut chart = ChartBuilder::on(&chart_area)
                .margin(12)
                .x_label_area_size(x_label_area)
                .y_label_area_size(y_label_area)
                .build_cartesian_2d(
                    (0..2 * n_cols as i64).with_key_points(column_ticks),
                    (0..2 * n_rows as i64).with_key_points(row_ticks),
                )?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .disable_y_mesh()
                .x_desc(spec.x_label.as_str())
                .y_desc(spec.y_label.as_str())
                .label_style((FONT, TICK_SIZE))
                .axis_desc_style((FONT, LABEL_SIZE))
                .x_label_formatter(&column_label)
                .y_label_formatter(&row_label)
                .draw()?;
            chart.draw_series(values.indexed_iter().map(|((r, c), &v)| {
                let (x, y) = (2 * c as i64, cell_y(r));
                Rectangle::new([(x, y), (x + 2, y + 2)], colors.color(v).filled())
            }))?;
            let plot = chart.plotting_area().get_pixel_range();
            draw_lines(&root, &spec.lines, (n_rows, n_cols), plot.clone())?;
            draw_color_bar(&root, spec, &colors, &labels, any_missing, plot)?;
            root.present()
        })();
        drawn.map_err(|e| drawing_error(target, e))?;
    }
    // Adjacent cells share their edges; without crisp edges, browsers anti-alias each edge and
    // leave hairline white seams between the columns.
    Ok(svg.replacen("<svg ", "<svg shape-rendering=\"crispEdges\" ", 1))
}

/// Draws `lines` over the cells, mapping cell coordinates to pixels of the plotting area, and
/// names them at its top left.
fn draw_lines(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    lines: &[HeatmapLine],
    (n_rows, n_cols): (usize, usize),
    (plot_x, plot_y): (Range<i32>, Range<i32>),
) -> DrawResult<()> {
    let (width, height) = ((plot_x.end - plot_x.start) as f64, (plot_y.end - plot_y.start) as f64);
    let inside = |(x, y): (f64, f64)| {
        x.is_finite()
            && y.is_finite()
            && (-0.5..=n_cols as f64 - 0.5).contains(&x)
            && (-0.5..=n_rows as f64 - 0.5).contains(&y)
    };
    let pixel = |(x, y): (f64, f64)| {
        let px = plot_x.start as f64 + (x + 0.5) / n_cols as f64 * width;
        let py = plot_y.start as f64 + (y + 0.5) / n_rows as f64 * height;
        (px.round() as i32, py.round() as i32)
    };
    let outline = RGBColor(0x20, 0x20, 0x20);
    for line in lines {
        for piece in line.points.split(|&p| !inside(p)).filter(|piece| piece.len() >= 2) {
            let path: Vec<(i32, i32)> = piece.iter().map(|&p| pixel(p)).collect();
            root.draw(&PathElement::new(path.clone(), outline.stroke_width(5)))?;
            root.draw(&PathElement::new(path, WHITE.stroke_width(3)))?;
        }
    }
    let style = (FONT, LABEL_SIZE).into_font().color(&WHITE).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, line) in lines.iter().enumerate() {
        let y = plot_y.start + 14 + i as i32 * (LABEL_SIZE as i32 + 6);
        let x = plot_x.start + 8;
        root.draw(&Rectangle::new(
            [(x - 4, y - 9), (x + 30 + 9 * line.name.chars().count() as i32, y + 9)],
            outline.filled(),
        ))?;
        root.draw(&PathElement::new(vec![(x, y), (x + 22, y)], WHITE.stroke_width(3)))?;
        root.draw(&Text::new(line.name.clone(), (x + 28, y), style.clone()))?;
    }
    Ok(())
}

/// Draws the colour bar to the right of the plotting area, spanning its height: the colour
/// map in [`COLOR_BAR_STEPS`] steps (smallest value at the bottom), a frame, the labels, the
/// value description along it, and a "no value" swatch below it if some cells are grey.
fn draw_color_bar(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    spec: &HeatmapSpec,
    colors: &ColorRange,
    labels: &[(f64, String)],
    any_missing: bool,
    (plot_x, plot_y): (Range<i32>, Range<i32>),
) -> DrawResult<()> {
    let x0 = plot_x.end + 14;
    let x1 = x0 + COLOR_BAR_WIDTH;
    let (top, bottom) = (plot_y.start, plot_y.end);
    let bar_height = (bottom - top) as f64;
    let y_at = |t: f64| bottom - (t * bar_height).round() as i32;
    for step in 0..COLOR_BAR_STEPS {
        let t0 = step as f64 / COLOR_BAR_STEPS as f64;
        let t1 = (step + 1) as f64 / COLOR_BAR_STEPS as f64;
        let color = viridis((t0 + t1) / 2.0);
        root.draw(&Rectangle::new([(x0, y_at(t1)), (x1, y_at(t0))], color.filled()))?;
    }
    root.draw(&Rectangle::new([(x0, top), (x1, bottom)], BLACK.stroke_width(1)))?;

    // Labels: min and max always; decade labels only where they do not crowd another label.
    let style = (FONT, TICK_SIZE).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
    let min_gap = TICK_SIZE as i32 + 2;
    let mut placed: Vec<i32> = Vec::new();
    for (t, text) in labels {
        let y = y_at(*t);
        if placed.iter().any(|&p| (p - y).abs() < min_gap) {
            continue;
        }
        placed.push(y);
        root.draw(&PathElement::new(vec![(x1, y), (x1 + 4, y)], BLACK.stroke_width(1)))?;
        root.draw(&Text::new(text.clone(), (x1 + 7, y), style.clone()))?;
    }

    let caption = match (colors.scale, spec.value_label.is_empty()) {
        (Scale::Linear, _) => spec.value_label.clone(),
        (Scale::Log10, true) => "log scale".to_string(),
        (Scale::Log10, false) => format!("{} (log scale)", spec.value_label),
    };
    if !caption.is_empty() {
        let x = root.dim_in_pixel().0 as i32 - LABEL_SIZE as i32 / 2 - 6;
        let caption_style = (FONT, LABEL_SIZE)
            .into_font()
            .transform(FontTransform::Rotate270)
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Center));
        root.draw(&Text::new(caption, (x, (top + bottom) / 2), caption_style))?;
    }

    if any_missing {
        let y = bottom + 14;
        root.draw(&Rectangle::new([(x0, y), (x1, y + 12)], MISSING_COLOR.filled()))?;
        let style = (FONT, TICK_SIZE).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Text::new("no value", (x1 + 7, y + 6), style))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::report::plot::test_util::{attribute, count_rects, elements, scratch_dir, svg_texts, text_y};
    use ndarray::{Array2, array};

    /// viridis at 0 and 1: the first and last anchors of matplotlib's viridis, as plotters
    /// writes colours.
    const VIRIDIS_LOW: &str = "#440154";
    const VIRIDIS_HIGH: &str = "#FEE825";
    const GREY: &str = "#D0D0D0";

    fn labels(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("layer {i}")).collect()
    }

    fn steps(n: usize) -> Vec<f64> {
        (0..n).map(|i| (i * 100) as f64).collect()
    }

    fn fills(svg: &str, color: &str) -> usize {
        elements(svg, "rect").iter().filter(|e| attribute(e, "fill") == Some(color)).count()
    }

    fn grid(rows: usize, cols: usize) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |(r, c)| 10f64.powi(-(r as i32)) * (1.0 + c as f64))
    }

    #[test]
    fn cells_are_drawn_with_crisp_edges_so_no_seams_show_between_them() {
        let values = ndarray::Array2::from_shape_fn((3, 40), |(r, c)| (r * 40 + c) as f64 + 1.0);
        let columns: Vec<f64> = (0..40).map(f64::from).collect();
        let svg = heatmap_svg(&HeatmapSpec::new("seams"), &["a", "b", "c"], &columns, values.view()).unwrap();
        let root = &svg[svg.find("<svg").unwrap()..];
        assert!(
            root[..root.find('>').unwrap()].contains(r#"shape-rendering="crispEdges""#),
            "{}",
            &root[..200]
        );
    }

    #[test]
    fn writes_one_rect_per_cell() {
        let dir = scratch_dir("heatmap-cells");
        let spec = HeatmapSpec::new("Gradient norm per layer").x_label("step").y_label("layer");
        let count = |rows: usize, cols: usize| {
            let path = dir.join(format!("{rows}x{cols}.svg"));
            heatmap(&path, &spec, &labels(rows), &steps(cols), grid(rows, cols).view()).unwrap();
            let svg = std::fs::read_to_string(&path).unwrap();
            assert!(svg.starts_with("<svg"));
            count_rects(&svg)
        };
        // Everything else (background, colour bar) is the same in both charts.
        assert_eq!(count(5, 7) - count(3, 4), 5 * 7 - 3 * 4);
        assert_eq!(count(6, 1) - count(1, 1), 5);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn extreme_cells_get_the_ends_of_the_colour_map() {
        let values = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
        let svg = heatmap_svg(&HeatmapSpec::new("t"), &labels(2), &steps(3), values.view()).unwrap();
        // The colour bar uses step mid-points, so only the min and max cells have these.
        assert_eq!(fills(&svg, VIRIDIS_LOW), 1);
        assert_eq!(fills(&svg, VIRIDIS_HIGH), 1);
        assert_eq!(fills(&svg, GREY), 0);
        // Every cell's colour is viridis at (v - min) / (max - min).
        for v in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] {
            let c = viridis((v - 1.0) / 5.0);
            let hex = format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
            assert!(fills(&svg, &hex) >= 1, "no cell coloured {hex} for {v}");
        }
    }

    #[test]
    fn colour_bar_labels_min_and_max_in_scientific_notation() {
        let values = array![[2.5e-7, 1e-6], [3e-4, 0.125]];
        let spec = HeatmapSpec::new("norms").value_label("gradient norm").color_scale(Scale::Log10);
        let svg = heatmap_svg(&spec, &labels(2), &[0.0, 50.0], values.view()).unwrap();
        let texts = svg_texts(&svg);
        for expected in
            ["norms", "2.5e-7", "1.25e-1", "gradient norm (log scale)", "layer 0", "layer 1", "0", "50"]
        {
            assert!(texts.iter().any(|t| t == expected), "no text {expected:?} in {texts:?}");
        }
        // Whole decades in between are labelled too, the max above the min.
        assert!(texts.contains(&"1e-3".to_string()), "{texts:?}");
        assert!(text_y(&svg, "1.25e-1").unwrap() < text_y(&svg, "1e-3").unwrap());
        assert!(text_y(&svg, "1e-3").unwrap() < text_y(&svg, "2.5e-7").unwrap());

        let linear = heatmap_svg(&HeatmapSpec::new("lin"), &labels(2), &[0.0, 50.0], values.view()).unwrap();
        let texts = svg_texts(&linear);
        assert!(texts.contains(&"2.5e-7".to_string()) && texts.contains(&"1.25e-1".to_string()));
        assert!(!texts.contains(&"1e-3".to_string()), "decades only on a log scale");
    }

    #[test]
    fn row_zero_is_drawn_at_the_top() {
        let svg = heatmap_svg(&HeatmapSpec::new("t"), &labels(3), &steps(2), grid(3, 2).view()).unwrap();
        let y = |label: &str| text_y(&svg, label).unwrap();
        assert!(y("layer 0") < y("layer 1") && y("layer 1") < y("layer 2"));
        // The largest value (row 0, last column) is the top-right cell.
        let top_right =
            elements(&svg, "rect").into_iter().find(|e| attribute(e, "fill") == Some(VIRIDIS_HIGH)).unwrap();
        let cell_y: i32 = attribute(top_right, "y").unwrap().parse().unwrap();
        let low =
            elements(&svg, "rect").into_iter().find(|e| attribute(e, "fill") == Some(VIRIDIS_LOW)).unwrap();
        assert!(cell_y < attribute(low, "y").unwrap().parse::<i32>().unwrap());
    }

    #[test]
    fn cells_without_a_value_are_grey() {
        let values = array![[1.0, f64::NAN, 0.0], [f64::INFINITY, 2.0, -1.0]];
        let log = HeatmapSpec::new("t").color_scale(Scale::Log10);
        let svg = heatmap_svg(&log, &labels(2), &steps(3), values.view()).unwrap();
        // NaN, +inf, 0 and -1 cannot be shown on a log scale; plus the legend swatch.
        assert_eq!(fills(&svg, GREY), 4 + 1);
        assert!(svg_texts(&svg).contains(&"no value".to_string()));

        let svg = heatmap_svg(&HeatmapSpec::new("t"), &labels(2), &steps(3), values.view()).unwrap();
        assert_eq!(fills(&svg, GREY), 2 + 1, "0 and -1 are values on a linear scale");

        let finite = array![[1.0, 2.0]];
        let svg = heatmap_svg(&HeatmapSpec::new("t"), &labels(1), &steps(2), finite.view()).unwrap();
        assert_eq!(fills(&svg, GREY), 0);
        assert!(!svg_texts(&svg).contains(&"no value".to_string()));
    }

    #[test]
    fn equal_values_get_the_middle_colour() {
        let values = Array2::from_elem((2, 2), 0.5);
        let svg = heatmap_svg(&HeatmapSpec::new("t"), &labels(2), &steps(2), values.view()).unwrap();
        let middle = viridis(0.5);
        let middle = format!("#{:02X}{:02X}{:02X}", middle.0, middle.1, middle.2);
        assert_eq!(fills(&svg, &middle), 4);
    }

    #[test]
    fn many_columns_are_labelled_sparsely() {
        let (rows, cols) = (40, 300);
        let svg = heatmap_svg(&HeatmapSpec::new("t"), &labels(rows), &steps(cols), grid(rows, cols).view())
            .unwrap();
        assert_eq!(
            count_rects(&svg)
                - count_rects(
                    &heatmap_svg(&HeatmapSpec::new("t"), &labels(1), &steps(1), grid(1, 1).view()).unwrap()
                ),
            rows * cols - 1
        );
        let texts = svg_texts(&svg);
        let column_labels = steps(cols).iter().filter(|s| texts.contains(&format_number(**s))).count();
        assert!((3..=15).contains(&column_labels), "{column_labels} column labels");
        assert!(texts.contains(&"0".to_string()));
        let row_labels = labels(rows).iter().filter(|l| texts.contains(l)).count();
        assert!(row_labels >= 5 && row_labels < rows, "{row_labels} row labels");
        assert!(texts.contains(&"layer 0".to_string()));
    }

    #[test]
    fn lines_are_drawn_over_the_cells_and_named_and_leave_out_points_outside() {
        let spec = HeatmapSpec::new("t")
            .line("boundary", [(-0.5, 0.0), (0.5, 0.5), (1.0, 1.0), (9.0, 9.0), (0.0, 1.0), (1.0, 0.0)]);
        let svg = heatmap_svg(&spec, &labels(2), &steps(2), grid(2, 2).view()).unwrap();
        assert!(svg_texts(&svg).contains(&"boundary".to_string()));
        // Two pieces (split at the point outside), each drawn twice (outline, white), plus the
        // legend's sample.
        let white = elements(&svg, "polyline")
            .into_iter()
            .filter(|e| attribute(e, "stroke") == Some("#FFFFFF"))
            .count();
        assert_eq!(white, 2 + 1, "{svg}");
        let plain = heatmap_svg(&HeatmapSpec::new("t"), &labels(2), &steps(2), grid(2, 2).view()).unwrap();
        assert_eq!(
            elements(&plain, "polyline")
                .into_iter()
                .filter(|e| attribute(e, "stroke") == Some("#FFFFFF"))
                .count(),
            0
        );
    }

    #[test]
    fn invalid_input_is_an_error_and_writes_no_file() {
        let dir = scratch_dir("heatmap-invalid");
        let path = dir.join("sub").join("heat.svg");
        let spec = HeatmapSpec::new("t");
        let values = grid(2, 3);

        let err = heatmap(&path, &spec, &labels(3), &steps(3), values.view()).unwrap_err();
        assert!(
            matches!(&err, Error::Data { source_name, reason }
            if source_name.ends_with("heat.svg") && reason.contains("(2, 3)") && reason.contains("3 row labels")),
            "{err}"
        );
        let err = heatmap(&path, &spec, &labels(2), &steps(2), values.view()).unwrap_err();
        assert!(matches!(&err, Error::Data { reason, .. } if reason.contains("2 column labels")), "{err}");

        let empty = Array2::<f64>::zeros((0, 3));
        let err = heatmap(&path, &spec, &labels(0), &steps(3), empty.view()).unwrap_err();
        assert!(matches!(&err, Error::Data { reason, .. } if reason.contains("no values")), "{err}");

        let zeros = Array2::<f64>::zeros((2, 3));
        let log = spec.clone().color_scale(Scale::Log10);
        let err = heatmap(&path, &log, &labels(2), &steps(3), zeros.view()).unwrap_err();
        assert!(matches!(&err, Error::Data { reason, .. } if reason.contains("log")), "{err}");
        let nan = Array2::from_elem((2, 3), f64::NAN);
        assert!(matches!(heatmap(&path, &spec, &labels(2), &steps(3), nan.view()), Err(Error::Data { .. })));

        let err =
            heatmap(&path, &spec.clone().size(800, 100), &labels(2), &steps(3), values.view()).unwrap_err();
        assert!(matches!(&err, Error::InvalidConfig { field: "size", .. }), "{err}");

        assert!(!dir.join("sub").exists(), "nothing may be created on error");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
