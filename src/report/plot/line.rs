//! [`line_chart`]: several named series of `(x, y)` points on one chart, with a legend.

use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::combinators::BindKeyPoints;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::{
    Scale, decimal, linear_range, linear_tick_formatter, log_decades, log_tick_formatter, log_ticks,
};
use super::output::{chart_name, check_size, data_error, drawing_error, write_svg};
use super::style::{FONT, LABEL_SIZE, TICK_SIZE, TITLE_SIZE, char_width, series_color};
use crate::Result;

/// What a [`line_chart`] shows around its data: title, axis descriptions, *y* scale, size.
///
/// ```
/// use gradflow::report::plot::{ChartSpec, Scale};
///
/// let spec = ChartSpec::new("Training loss").x_label("epoch").y_label("loss");
/// assert_eq!(spec.y_scale, Scale::Linear);
/// assert_eq!(spec.size, (800, 500));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSpec {
    /// Title drawn above the chart (none when empty).
    pub title: String,
    /// Description of the *x* axis, e.g. `"layer"` or `"step"`.
    pub x_label: String,
    /// Description of the *y* axis, e.g. `"gradient norm"`.
    pub y_label: String,
    /// Scale of the *y* axis (default [`Scale::Linear`]).
    pub y_scale: Scale,
    /// Width and height in pixels (default 800 × 500; at least 200 × 150).
    pub size: (u32, u32),
}

impl Default for ChartSpec {
    fn default() -> Self {
        ChartSpec {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            y_scale: Scale::Linear,
            size: (800, 500),
        }
    }
}

impl ChartSpec {
    /// A chart with this title and the defaults for everything else.
    pub fn new(title: impl Into<String>) -> Self {
        ChartSpec { title: title.into(), ..ChartSpec::default() }
    }

    /// Sets the description of the *x* axis.
    pub fn x_label(mut self, label: impl Into<String>) -> Self {
        self.x_label = label.into();
        self
    }

    /// Sets the description of the *y* axis.
    pub fn y_label(mut self, label: impl Into<String>) -> Self {
        self.y_label = label.into();
        self
    }

    /// Sets the scale of the *y* axis.
    pub fn y_scale(mut self, scale: Scale) -> Self {
        self.y_scale = scale;
        self
    }

    /// Sets the size in pixels.
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }
}

/// One named line of a [`line_chart`]: its points in drawing order, and the group that decides
/// its colour.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The name shown in the legend.
    pub name: String,
    /// The `(x, y)` points, joined by straight lines in this order.
    pub points: Vec<(f64, f64)>,
    /// The group the series belongs to (e.g. the model, for its train and test curves): series
    /// of one group share a colour and differ by their dash pattern. `None`: a group of its own.
    pub group: Option<String>,
}

impl Series {
    /// A series from `(x, y)` points.
    pub fn new(name: impl Into<String>, points: impl IntoIterator<Item = (f64, f64)>) -> Self {
        Series { name: name.into(), points: points.into_iter().collect(), group: None }
    }

    /// Puts the series in `group`: series of one group share a colour (the first is solid, the
    /// next dashed, then dotted), so that "plain (train)" and "plain (test)" read as one model
    /// and stay visible even where they coincide.
    ///
    /// ```
    /// use gradflow::report::plot::Series;
    /// let train = Series::indexed("plain (train)", &[2.3, 2.3]).group("plain");
    /// assert_eq!(train.group.as_deref(), Some("plain"));
    /// ```
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// A series whose *x* is the position in `values`, counted from 0 (as layer paths are):
    /// `indexed("tanh", &[a, b])` has the points `(0, a)` and `(1, b)`.
    pub fn indexed(name: impl Into<String>, values: &[f64]) -> Self {
        Series::new(name, values.iter().enumerate().map(|(i, &y)| (i as f64, y)))
    }
}

/// Draws `series` as lines on one chart and writes it as an SVG file at `path`, creating the
/// parent directory if needed.
///
/// Each group of series ([`Series::group`]; an ungrouped series is a group of its own) gets its
/// own colour, in the order the groups first appear (matplotlib's ten-colour cycle, repeated
/// after ten groups): charts that list the same models in the same order colour each model
/// alike. Within a group the first series is solid, the second dashed, the third dotted, so
/// that no two series of a chart look the same (up to ten groups of three) and a series drawn
/// over an identical one leaves it visible. Every series has an entry in the legend, which sits
/// to the right of the plotting area so that it never hides a line.
///
/// # Points that cannot be shown
/// A point whose *x* or *y* is NaN or infinite, or whose *y* is `≤ 0` on a
/// [`Scale::Log10`] axis, is **skipped**: the line is broken there rather than drawn through
/// it, and a point left with no neighbour is drawn as a dot. A series with no point left is
/// still listed in the legend, marked "(nothing to show)".
///
/// # Axes
/// The *x* axis spans the points exactly; a linear *y* axis gets 5 % of room above and below;
/// a log₁₀ *y* axis spans whole decades. A flat range (all values equal) is widened so the
/// axis has a length.
///
/// # Errors
/// - [`Error::InvalidConfig`](crate::Error::InvalidConfig) if `spec.size` is below 200 × 150.
/// - [`Error::Data`](crate::Error::Data), naming `path`, if `series` is empty or no series
///   has a point that can be shown.
/// - [`Error::Io`](crate::Error::Io), naming the directory or file, if it cannot be written.
///
/// No file is created when an error is returned before writing.
pub fn line_chart(path: impl AsRef<Path>, spec: &ChartSpec, series: &[Series]) -> Result<()> {
    let path = path.as_ref();
    let svg = render(&path.display().to_string(), spec, series)?;
    write_svg(path, &svg)
}

/// Like [`line_chart`], but returns the SVG document instead of writing a file; errors name
/// the chart by its title.
///
/// ```
/// use gradflow::report::plot::{line_chart_svg, ChartSpec, Series};
///
/// let svg = line_chart_svg(&ChartSpec::new("loss"), &[Series::indexed("train", &[2.3, 1.1, 0.7])])?;
/// assert!(svg.starts_with("<svg") && svg.contains("train"));
/// # Ok::<(), gradflow::Error>(())
/// ```
pub fn line_chart_svg(spec: &ChartSpec, series: &[Series]) -> Result<String> {
    render(&chart_name(&spec.title), spec, series)
}

/// A series split into runs of consecutive points that can be shown.
struct Prepared<'s> {
    name: &'s str,
    runs: Vec<Vec<(f64, f64)>>,
    /// Index into the colour cycle, and dash pattern (0 solid, 1 dashed, 2 dotted, …).
    color: usize,
    dash: usize,
}

/// The colour (group number) and dash pattern (position within its group) of each series.
pub(super) fn series_styles(series: &[Series]) -> Vec<(usize, usize)> {
    let mut groups: Vec<&str> = Vec::new();
    let mut counts: Vec<usize> = Vec::new();
    series
        .iter()
        .map(|s| {
            let key = s.group.as_deref().unwrap_or(&s.name);
            let color = groups.iter().position(|g| *g == key).unwrap_or_else(|| {
                groups.push(key);
                counts.push(0);
                groups.len() - 1
            });
            counts[color] += 1;
            (color, counts[color] - 1)
        })
        .collect()
}

/// Dash length and gap, in pixels, of dash pattern `dash` (0 is solid).
fn dash_pattern(dash: usize) -> Option<(u32, u32)> {
    match dash % 4 {
        0 => None,
        1 => Some((9, 5)),
        2 => Some((2, 4)),
        _ => Some((12, 4)),
    }
}

impl Prepared<'_> {
    fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}

/// Splits `series` at the points `y_scale` cannot show.
fn prepare(series: &Series, y_scale: Scale) -> Prepared<'_> {
    let mut runs = Vec::new();
    let mut run = Vec::new();
    for &(x, y) in &series.points {
        if x.is_finite() && y_scale.can_show(y) {
            run.push((x, y));
        } else if !run.is_empty() {
            runs.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    Prepared { name: &series.name, runs, color: 0, dash: 0 }
}

/// `(min, max)` of the `pick`ed coordinate over all points of all runs; `None` if there are
/// no points.
fn bounds(prepared: &[Prepared<'_>], pick: impl Fn(&(f64, f64)) -> f64) -> Option<(f64, f64)> {
    prepared.iter().flat_map(|p| p.runs.iter().flatten()).map(pick).fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// Room around the chart, below it for the *x* labels and left of it for the *y* labels.
const MARGIN: u32 = 12;
const X_LABEL_AREA: u32 = 48;
const Y_LABEL_AREA: u32 = 78;

type DrawResult<T> = std::result::Result<T, DrawingAreaErrorKind<std::io::Error>>;

fn render(target: &str, spec: &ChartSpec, series: &[Series]) -> Result<String> {
    check_size("ChartSpec", spec.size)?;
    if series.is_empty() {
        return Err(data_error(target, "no series to plot"));
    }
    let styles = series_styles(series);
    let prepared: Vec<Prepared<'_>> = series
        .iter()
        .zip(styles)
        .map(|(s, (color, dash))| Prepared { color, dash, ..prepare(s, spec.y_scale) })
        .collect();
    let (Some((x_lo, x_hi)), Some((y_lo, y_hi))) = (bounds(&prepared, |p| p.0), bounds(&prepared, |p| p.1))
    else {
        let needs = match spec.y_scale {
            Scale::Linear => "finite x and y",
            Scale::Log10 => "finite x and finite y > 0 (log scale)",
        };
        return Err(data_error(
            target,
            format!("none of the {} series has a point that can be drawn (needs {needs})", series.len()),
        ));
    };
    let (x_lo, x_hi) = linear_range(x_lo, x_hi, 0.0);
    if !(x_hi - x_lo).is_finite() || !(y_hi - y_lo).is_finite() {
        return Err(data_error(target, "the values span a range too wide to draw (overflows f64)"));
    }

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
            let legend_width = legend_width(&prepared, spec.size.0);
            let chart_width = spec.size.0.saturating_sub(legend_width);
            let (chart_area, _) = body.split_horizontally(chart_width);
            // Label counts that leave room between labels, from the approximate plot size.
            let plot_width = chart_width.saturating_sub(Y_LABEL_AREA + 2 * MARGIN) as usize;
            let title_room = if spec.title.is_empty() { 0 } else { TITLE_SIZE + 16 };
            let plot_height = spec.size.1.saturating_sub(title_room + X_LABEL_AREA + 2 * MARGIN) as usize;
            let labels = ((plot_width / 70).clamp(2, 10), (plot_height / 28).clamp(2, 10));
            let x = x_lo..x_hi;
            let plot = match spec.y_scale {
                Scale::Linear => {
                    let (lo, hi) = linear_range(y_lo, y_hi, 0.05);
                    let format = linear_tick_formatter(lo, hi);
                    draw_plot(&chart_area, spec, x, lo..hi, &format, labels, &prepared)?
                }
                Scale::Log10 => {
                    let (a, b) = log_decades(y_lo, y_hi);
                    let (lo, hi) = (decimal(1, a), decimal(1, b));
                    let (bold, light) = log_ticks(a, b, labels.1);
                    let y = (lo..hi).log_scale().with_key_points(bold).with_light_points(light);
                    let format = log_tick_formatter(lo, hi);
                    draw_plot(&chart_area, spec, x, y, &format, labels, &prepared)?
                }
            };
            draw_legend(&root, &prepared, plot)?;
            root.present()
        })();
        drawn.map_err(|e| drawing_error(target, e))?;
    }
    Ok(svg)
}

/// Width in pixels of the legend column, from the longest series name.
fn legend_width(prepared: &[Prepared<'_>], chart_width: u32) -> u32 {
    let longest = prepared.iter().map(|p| legend_text(p).chars().count()).max().unwrap_or(0);
    (longest as u32 * char_width(LABEL_SIZE) + 55).clamp(80, chart_width / 3)
}

fn legend_text(prepared: &Prepared<'_>) -> String {
    if prepared.is_empty() {
        format!("{} (nothing to show)", prepared.name)
    } else {
        prepared.name.to_string()
    }
}

/// Draws axes, grid and lines; returns the plotting area's pixel range `(x, y)`.
fn draw_plot<Y>(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    spec: &ChartSpec,
    x: Range<f64>,
    y: Y,
    y_format: &dyn Fn(&f64) -> String,
    (x_labels, y_labels): (usize, usize),
    prepared: &[Prepared<'_>],
) -> DrawResult<(Range<i32>, Range<i32>)>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let x_format = linear_tick_formatter(x.start, x.end);
    let mut chart = ChartBuilder::on(area)
        .margin(MARGIN)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc(spec.x_label.as_str())
        .y_desc(spec.y_label.as_str())
        .label_style((FONT, TICK_SIZE))
        .axis_desc_style((FONT, LABEL_SIZE))
        .light_line_style(BLACK.mix(0.04))
        .bold_line_style(BLACK.mix(0.12))
        .x_labels(x_labels)
        .y_labels(y_labels)
        .x_label_formatter(&x_format)
        .y_label_formatter(y_format)
        .draw()?;
    for series in prepared {
        let color = series_color(series.color);
        for run in &series.runs {
            if let [point] = run.as_slice() {
                chart.draw_series(std::iter::once(Circle::new(*point, 3, color.filled())))?;
            } else if let Some((dash, gap)) = dash_pattern(series.dash) {
                let points = run.iter().copied();
                chart.draw_series(DashedLineSeries::new(points, dash, gap, color.stroke_width(2)))?;
            } else {
                chart.draw_series(LineSeries::new(run.iter().copied(), color.stroke_width(2)))?;
            }
        }
    }
    Ok(chart.plotting_area().get_pixel_range())
}

/// Draws one legend entry per series (a line sample and the name) to the right of the
/// plotting area, top-aligned with it.
fn draw_legend(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    prepared: &[Prepared<'_>],
    (plot_x, plot_y): (Range<i32>, Range<i32>),
) -> DrawResult<()> {
    let x0 = plot_x.end + 16;
    let row_height = LABEL_SIZE as i32 + 8;
    let style = (FONT, LABEL_SIZE).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
    for (index, series) in prepared.iter().enumerate() {
        let y = plot_y.start + row_height / 2 + index as i32 * row_height;
        let color = series_color(series.color);
        let sample = vec![(x0, y), (x0 + 24, y)];
        match dash_pattern(series.dash) {
            Some((dash, gap)) => root.draw(&plotters::element::DashedPathElement::new(
                sample,
                dash as i32,
                gap as i32,
                color.stroke_width(2),
            ))?,
            None => root.draw(&PathElement::new(sample, color.stroke_width(2)))?,
        }
        root.draw(&Text::new(legend_text(series), (x0 + 32, y), style.clone()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::report::plot::test_util::{elements, polylines_in, scratch_dir, svg_texts};

    /// The first three colours of the cycle, as plotters writes them.
    const BLUE: &str = "#1F77B4";
    const ORANGE: &str = "#FF7F0E";
    const GREEN: &str = "#2CA02C";

    fn vanishing(name: &str, factor: f64, layers: i32) -> Series {
        Series::new(name, (0..layers).map(|l| (l as f64, factor.powi(layers - 1 - l))))
    }

    #[test]
    fn log_chart_shows_title_legend_axis_labels_and_every_decade() {
        let dir = scratch_dir("line-log");
        let path = dir.join("grad.svg");
        let spec = ChartSpec::new("Gradient norm by layer")
            .x_label("layer index")
            .y_label("gradient norm")
            .y_scale(Scale::Log10);
        // 0.1^8 = 1e-8 at layer 0 up to 1 at layer 8.
        let series = [vanishing("sigmoid", 0.1, 9), vanishing("relu", 0.9, 9), vanishing("tanh", 0.5, 9)];
        line_chart(&path, &spec, &series).unwrap();

        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        let texts = svg_texts(&svg);
        for expected in ["Gradient norm by layer", "layer index", "gradient norm", "sigmoid", "relu", "tanh"]
        {
            assert!(texts.iter().any(|t| t == expected), "no text {expected:?} in {texts:?}");
        }
        // The axis spans 1e-8 ..= 1 and there is room to label every decade.
        for exponent in -8..=0 {
            let label = format!("1e{exponent}");
            assert!(texts.contains(&label), "no tick label {label} in {texts:?}");
        }
        assert!(!texts.contains(&"1e-9".to_string()) && !texts.contains(&"1e1".to_string()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn decades_are_evenly_spaced_on_a_log_axis() {
        let spec = ChartSpec::new("").y_scale(Scale::Log10);
        let svg = line_chart_svg(&spec, &[vanishing("s", 0.1, 5)]).unwrap();
        let ys: Vec<i32> = (-4..=0)
            .map(|e| crate::report::plot::test_util::text_y(&svg, &format!("1e{e}")).unwrap())
            .collect();
        let gaps: Vec<i32> = ys.windows(2).map(|w| w[0] - w[1]).collect();
        assert!(gaps.iter().all(|&g| g > 0), "1e-4 must be below 1e0: {ys:?}");
        assert!(gaps.iter().all(|&g| (g - gaps[0]).abs() <= 1), "uneven decades: {gaps:?}");
    }

    #[test]
    fn each_series_has_its_own_colour_and_a_legend_entry() {
        let series = [
            Series::indexed("train", &[2.0, 1.0, 0.5]),
            Series::indexed("test", &[2.1, 1.3, 0.9]),
            Series::indexed("baseline", &[2.3, 2.3, 2.3]),
        ];
        let svg = line_chart_svg(&ChartSpec::new("loss"), &series).unwrap();
        for color in [BLUE, ORANGE, GREEN] {
            let lines = polylines_in(&svg, color);
            // One for the data (three points), one for the legend sample (two points).
            let mut lengths: Vec<usize> = lines.iter().map(Vec::len).collect();
            lengths.sort();
            assert_eq!(lengths, [2, 3], "{color}");
        }
        // Legend rows are stacked in series order, to the right of the data.
        let y = |name| crate::report::plot::test_util::text_y(&svg, name).unwrap();
        assert!(y("train") < y("test") && y("test") < y("baseline"));
    }

    #[test]
    fn a_group_shares_a_colour_and_its_series_stay_visible_where_they_coincide() {
        // The plain network learns nothing: its train and test losses are the same line.
        let loss = [
            Series::indexed("plain (train)", &[2.3, 2.3, 2.3]).group("plain"),
            Series::indexed("plain (test)", &[2.3, 2.3, 2.3]).group("plain"),
            Series::indexed("residual (train)", &[2.0, 0.5, 0.1]).group("residual"),
            Series::indexed("residual (test)", &[2.1, 0.7, 0.3]).group("residual"),
        ];
        assert_eq!(series_styles(&loss), [(0, 0), (0, 1), (1, 0), (1, 1)]);
        let svg = line_chart_svg(&ChartSpec::new("loss"), &loss).unwrap();
        // Solid: one data line and one legend sample per group; the dashed series are drawn as
        // many short segments in the same colour, so the solid line shows between them.
        for color in [BLUE, ORANGE] {
            let lines = polylines_in(&svg, color);
            let spans: Vec<(i32, i32)> = lines.iter().map(|l| (l[0].0, l[l.len() - 1].0)).collect();
            let width = spans.iter().map(|&(a, b)| b - a).max().unwrap();
            // The solid line runs across the plot; the dashed one is short pieces of it.
            assert_eq!(spans.iter().filter(|&&(a, b)| b - a == width).count(), 1, "{color}: {spans:?}");
            assert!(lines.len() > 6, "{color}: dashed segments drawn too ({} lines)", lines.len());
        }
        assert!(polylines_in(&svg, GREEN).is_empty(), "two groups, two colours");

        // Another chart with the same models in the same order colours each model alike.
        let accuracy = [Series::indexed("plain", &[10.0, 10.0]), Series::indexed("residual", &[50.0, 97.0])];
        assert_eq!(series_styles(&accuracy), [(0, 0), (1, 0)]);
        // Every series of a chart differs from every other in colour or dash.
        let styles = series_styles(&loss);
        for (i, a) in styles.iter().enumerate() {
            assert!(styles[i + 1..].iter().all(|b| b != a));
        }
    }

    #[test]
    fn colours_repeat_after_ten_series() {
        assert_eq!(series_color(0), series_color(10));
        let distinct: std::collections::HashSet<_> = (0..10)
            .map(|i| {
                let c = series_color(i);
                (c.0, c.1, c.2)
            })
            .collect();
        assert_eq!(distinct.len(), 10);
    }

    #[test]
    fn unshowable_points_break_the_line() {
        let series = Series::new(
            "s",
            [
                (0.0, 1.0),
                (1.0, 0.0),
                (2.0, -1.0),
                (3.0, f64::NAN),
                (4.0, 1e-3),
                (5.0, 1e-2),
                (f64::INFINITY, 1.0),
            ],
        );
        let log = prepare(&series, Scale::Log10);
        assert_eq!(log.runs, vec![vec![(0.0, 1.0)], vec![(4.0, 1e-3), (5.0, 1e-2)]]);
        let linear = prepare(&series, Scale::Linear);
        assert_eq!(
            linear.runs,
            vec![vec![(0.0, 1.0), (1.0, 0.0), (2.0, -1.0)], vec![(4.0, 1e-3), (5.0, 1e-2)]]
        );

        // On the chart: the lone point is a dot, the pair is a two-point line.
        let svg = line_chart_svg(&ChartSpec::new("t").y_scale(Scale::Log10), &[series]).unwrap();
        assert_eq!(elements(&svg, "circle").len(), 1);
        let mut lengths: Vec<usize> = polylines_in(&svg, BLUE).iter().map(Vec::len).collect();
        lengths.sort();
        assert_eq!(lengths, [2, 2], "data line of two points and the legend sample");
    }

    #[test]
    fn a_series_with_nothing_to_show_is_marked_in_the_legend() {
        let series = [Series::indexed("ok", &[1.0, 2.0]), Series::indexed("dead", &[0.0, 0.0])];
        let svg = line_chart_svg(&ChartSpec::new("t").y_scale(Scale::Log10), &series).unwrap();
        assert!(svg_texts(&svg).contains(&"dead (nothing to show)".to_string()));
    }

    #[test]
    fn flat_series_get_a_padded_axis() {
        // Linear: the line is horizontal and inside the plot, between 4.5 and 5.5.
        let svg = line_chart_svg(&ChartSpec::new("flat"), &[Series::indexed("c", &[5.0; 4])]).unwrap();
        let line = polylines_in(&svg, BLUE).into_iter().find(|l| l.len() == 4).unwrap();
        assert!(line.iter().all(|p| p.1 == line[0].1));
        let texts = svg_texts(&svg);
        assert!(texts.contains(&"5".to_string()), "{texts:?}");

        // Log: one decade of room on each side of 1e-3.
        let spec = ChartSpec::new("flat").y_scale(Scale::Log10);
        let svg = line_chart_svg(&spec, &[Series::indexed("c", &[1e-3; 4])]).unwrap();
        let texts = svg_texts(&svg);
        for label in ["1e-4", "1e-3", "1e-2"] {
            assert!(texts.contains(&label.to_string()), "no {label} in {texts:?}");
        }
        // A single point is a flat range in x as well.
        line_chart_svg(&ChartSpec::new("one"), &[Series::new("p", [(3.0, 7.0)])]).unwrap();
    }

    #[test]
    fn invalid_input_is_an_error_and_writes_no_file() {
        let dir = scratch_dir("line-invalid");
        let path = dir.join("sub").join("chart.svg");
        let log = ChartSpec::new("t").y_scale(Scale::Log10);

        let err = line_chart(&path, &log, &[]).unwrap_err();
        assert!(
            matches!(&err, Error::Data { source_name, reason }
            if source_name.ends_with("chart.svg") && reason.contains("no series")),
            "{err}"
        );

        let err = line_chart(&path, &log, &[Series::indexed("zeros", &[0.0, -1.0, f64::NAN])]).unwrap_err();
        assert!(matches!(&err, Error::Data { reason, .. } if reason.contains("log scale")), "{err}");

        let err = line_chart(&path, &log, &[Series::new("empty", [])]).unwrap_err();
        assert!(matches!(err, Error::Data { .. }), "{err}");

        let err =
            line_chart(&path, &log.clone().size(100, 500), &[Series::indexed("a", &[1.0])]).unwrap_err();
        assert!(matches!(&err, Error::InvalidConfig { field: "size", .. }), "{err}");

        let err = line_chart(&path, &ChartSpec::new("t"), &[Series::indexed("a", &[-f64::MAX, f64::MAX])])
            .unwrap_err();
        assert!(matches!(err, Error::Data { .. }), "{err}");

        assert!(!dir.join("sub").exists(), "nothing may be created on error");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_parent_directories_are_created() {
        let dir = scratch_dir("line-parents");
        let path = dir.join("a").join("b").join("chart.svg");
        line_chart(&path, &ChartSpec::new("t"), &[Series::indexed("a", &[1.0, 2.0])]).unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().starts_with("<svg"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unwritable_directory_is_named_in_the_error() {
        let dir = scratch_dir("line-unwritable");
        let blocker = dir.join("blocker");
        std::fs::write(&blocker, "a file, not a directory").unwrap();
        let path = blocker.join("sub").join("chart.svg");
        let err = line_chart(&path, &ChartSpec::new("t"), &[Series::indexed("a", &[1.0, 2.0])]).unwrap_err();
        assert!(matches!(&err, Error::Io { path: p, .. } if *p == blocker.join("sub")), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
