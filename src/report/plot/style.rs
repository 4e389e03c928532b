//! Colours and fonts shared by the charts.

use plotters::prelude::{ColorMap, RGBColor, ViridisRGB};

/// Font family of every text; SVG viewers substitute their default sans-serif font.
pub(super) const FONT: &str = "sans-serif";
/// Font size of the chart title.
pub(super) const TITLE_SIZE: u32 = 22;
/// Font size of axis descriptions and legend entries.
pub(super) const LABEL_SIZE: u32 = 15;
/// Font size of tick labels.
pub(super) const TICK_SIZE: u32 = 13;

/// Approximate width of one character of a `size`-pixel sans-serif font, for layout.
pub(super) fn char_width(size: u32) -> u32 {
    (size * 6).div_ceil(10)
}

/// Line colours, in order: matplotlib's default colour cycle "tab10" (the Tableau 10
/// palette, `matplotlib._cm._tab10_data`), chosen to stay distinguishable from each other.
const SERIES_COLORS: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// The colour of the `index`-th series; after ten series the colours repeat.
pub(super) fn series_color(index: usize) -> RGBColor {
    SERIES_COLORS[index % SERIES_COLORS.len()]
}

/// Colour of heatmap cells that have no value to show (NaN, ±∞, or ≤ 0 on a log scale):
/// a light grey, outside the viridis colour map.
pub(super) const MISSING_COLOR: RGBColor = RGBColor(0xd0, 0xd0, 0xd0);

/// The viridis colour for `t` in `[0, 1]` (dark purple at 0, yellow at 1), from plotters'
/// `ViridisRGB` (eight anchor colours of matplotlib's viridis, linearly interpolated).
pub(super) fn viridis(t: f64) -> RGBColor {
    ViridisRGB.get_color(t.clamp(0.0, 1.0) as f32)
}
