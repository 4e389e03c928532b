//! Axis scales: which values a scale can show, the range an axis spans, and tick labels.

/// How values are mapped onto an axis (or onto a heatmap's colours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scale {
    /// Equal distances for equal differences (the default).
    #[default]
    Linear,
    /// Equal distances for equal *ratios*: 10⁻⁸, 10⁻⁷, … are evenly spaced. Only values `> 0`
    /// can be shown; the charts skip the others (see [`line_chart`](super::line_chart) and
    /// [`heatmap`](super::heatmap)).
    Log10,
}

impl Scale {
    /// Whether `value` can be placed on this scale: finite, and `> 0` on [`Scale::Log10`].
    pub fn can_show(self, value: f64) -> bool {
        value.is_finite() && (self == Scale::Linear || value > 0.0)
    }
}

/// Smallest and largest decimal exponent an `f64` power of ten can have without becoming
/// subnormal or infinite.
const MIN_EXPONENT: i32 = -307;
const MAX_EXPONENT: i32 = 308;

/// The range of a linear axis showing values from `lo` to `hi` (both finite, `lo <= hi`),
/// widened by `margin` (a fraction of the span) on both sides. A flat range (`lo == hi`) is
/// widened by 10 % of the value (or by 1 around zero) so that the axis has a length.
pub(super) fn linear_range(lo: f64, hi: f64, margin: f64) -> (f64, f64) {
    if hi > lo {
        let pad = (hi - lo) * margin;
        (lo - pad, hi + pad)
    } else {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - pad, hi + pad)
    }
}

/// The decimal exponents `(a, b)` of the whole decades `10^a ..= 10^b` that enclose the
/// positive values `lo ..= hi`. A range within a single power of ten gets one decade of
/// room on each side, so the axis always shows at least two labelled decades.
pub(super) fn log_decades(lo: f64, hi: f64) -> (i32, i32) {
    let clamp = |e: f64| (e as i32).clamp(MIN_EXPONENT, MAX_EXPONENT);
    let mut a = clamp(lo.log10().floor());
    let mut b = clamp(hi.log10().ceil());
    if a == b {
        a = (a - 1).max(MIN_EXPONENT);
        b = (b + 1).min(MAX_EXPONENT);
    }
    (a, b)
}

/// The `f64` nearest to `mantissa × 10^exponent` (parsed, so `1e-7` is exact to the last
/// bit, unlike `10f64.powi(-7)`).
pub(super) fn decimal(mantissa: u32, exponent: i32) -> f64 {
    format!("{mantissa}e{exponent}").parse().unwrap_or(f64::NAN)
}

/// Ticks of a log₁₀ axis spanning `10^a ..= 10^b` (`a < b`): the labelled ("bold") values and
/// the grid-only ("light") values.
///
/// Every decade is labelled if at most `max_labels` fit, otherwise every 2nd, 5th, 10th, …
/// decade (multiples of the stride, so that `10⁰` is among them). An axis of at most two
/// decades also labels 2 and 5 times each power of ten. Light grid lines mark 1…9 times each
/// power of ten up to twelve decades, and every decade beyond that.
pub(super) fn log_ticks(a: i32, b: i32, max_labels: usize) -> (Vec<f64>, Vec<f64>) {
    let decades = (b - a) as usize;
    let stride = nice_stride((decades + 1).div_ceil(max_labels.max(1)));
    let mut bold: Vec<f64> =
        (a..=b).filter(|e| e.rem_euclid(stride as i32) == 0).map(|e| decimal(1, e)).collect();
    if decades <= 2 && max_labels > 3 * decades {
        bold.extend((a..b).flat_map(|e| [decimal(2, e), decimal(5, e)]));
        bold.sort_by(f64::total_cmp);
    }
    let light = if decades <= 12 {
        let mut light: Vec<f64> = (a..b).flat_map(|e| (1..=9).map(move |m| decimal(m, e))).collect();
        light.push(decimal(1, b));
        light
    } else {
        (a..=b).map(|e| decimal(1, e)).collect()
    };
    (bold, light)
}

/// A number in scientific notation with at most `significant` digits and trailing zeros
/// removed: `1e-8`, `2.5e-3`, `-1.23e4`.
pub(super) fn format_scientific(value: f64, significant: usize) -> String {
    let text = format!("{:.*e}", significant.saturating_sub(1), value);
    match text.split_once('e') {
        Some((mantissa, exponent)) if mantissa.contains('.') => {
            let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
            format!("{mantissa}e{exponent}")
        }
        _ => text,
    }
}

/// A number in plain decimal notation with about four significant digits: `0.0015`, `250`.
fn format_plain(value: f64) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (3 - magnitude).max(0) as usize;
    trim_decimals(format!("{value:.decimals$}"))
}

/// Tick labels for a linear axis spanning `lo..hi` (`lo < hi`): plain numbers when the
/// largest magnitude lies in `[0.001, 100000)`, scientific notation otherwise, each with enough
/// digits to tell ticks a fraction of the span apart; values within 10⁻⁹ of the span from
/// zero (rounding errors of the tick positions) print as `0`.
pub(super) fn linear_tick_formatter(lo: f64, hi: f64) -> impl Fn(&f64) -> String {
    let magnitude = lo.abs().max(hi.abs());
    let span = hi - lo;
    let span_exponent = span.log10().floor() as i32;
    let plain = (1e-3..1e5).contains(&magnitude);
    move |value: &f64| {
        let value = *value;
        if value.abs() < span * 1e-9 {
            "0".to_string()
        } else if plain {
            let decimals = (2 - span_exponent).max(0) as usize;
            trim_decimals(format!("{value:.decimals$}"))
        } else {
            let exponent = value.abs().log10().floor() as i32;
            format_scientific(value, (exponent - span_exponent + 3).clamp(1, 15) as usize)
        }
    }
}

/// Removes trailing zeros after a decimal point, and the point if nothing follows it.
fn trim_decimals(text: String) -> String {
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text }
}

/// A label for an arbitrary value such as a training step: integers as integers (`1500`),
/// other values plain when moderate (`0.25`), scientific otherwise (`1.5e-7`).
pub(super) fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else if (1e-3..1e5).contains(&value.abs()) {
        format_plain(value)
    } else {
        format_scientific(value, 3)
    }
}

/// The smallest "nice" stride (1, 2, 5, 10, 20, 50, …) that is at least `minimum`.
pub(super) fn nice_stride(minimum: usize) -> usize {
    let mut decade = 1;
    loop {
        for step in [1, 2, 5] {
            if step * decade >= minimum {
                return step * decade;
            }
        }
        decade *= 10;
    }
}

/// Tick labels for a log₁₀ axis spanning `lo..hi`: plain numbers (`0.01`, `1`, `100`) when the
/// whole axis lies within `[0.001, 10000]`, scientific notation (`1e-8`) otherwise, so that one
/// axis never mixes the two.
pub(super) fn log_tick_formatter(lo: f64, hi: f64) -> impl Fn(&f64) -> String {
    let plain = lo >= 1e-3 && hi <= 1e4;
    move |value: &f64| {
        if plain { format_plain(*value) } else { format_scientific(*value, 3) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_scale_shows_only_positive_finite_values() {
        assert!(Scale::Log10.can_show(1e-300));
        assert!(!Scale::Log10.can_show(0.0));
        assert!(!Scale::Log10.can_show(-1.0));
        assert!(!Scale::Log10.can_show(f64::NAN));
        assert!(Scale::Linear.can_show(-1.0));
        assert!(!Scale::Linear.can_show(f64::INFINITY));
    }

    #[test]
    fn flat_linear_range_is_padded() {
        assert_eq!(linear_range(5.0, 5.0, 0.05), (4.5, 5.5));
        assert_eq!(linear_range(0.0, 0.0, 0.05), (-1.0, 1.0));
        assert_eq!(linear_range(0.0, 10.0, 0.1), (-1.0, 11.0));
    }

    #[test]
    fn log_decades_enclose_the_values() {
        assert_eq!(log_decades(1e-8, 1.0), (-8, 0));
        assert_eq!(log_decades(2e-3, 0.5), (-3, 0));
        // A single exact power of ten gets a decade of room on each side.
        assert_eq!(log_decades(1e-3, 1e-3), (-4, -2));
        // Subnormal values are clamped to the smallest normal decade.
        assert_eq!(log_decades(5e-324, 1.0).0, MIN_EXPONENT);
    }

    #[test]
    fn log_ticks_label_decades() {
        let (bold, light) = log_ticks(-8, 0, 20);
        let expected: Vec<f64> = (-8..=0).map(|e| decimal(1, e)).collect();
        assert_eq!(bold, expected);
        assert_eq!(bold[0], 1e-8);
        assert_eq!(light.len(), 8 * 9 + 1);
        assert!(light.contains(&3e-5));
        // Too many decades for the room: every 5th, aligned to 10⁰.
        let (bold, light) = log_ticks(-30, 2, 8);
        assert_eq!(bold, [1e-30, 1e-25, 1e-20, 1e-15, 1e-10, 1e-5, 1.0]);
        assert_eq!(light.len(), 33);
        // Two decades: 1, 2, 5 in each.
        let (bold, _) = log_ticks(-2, 0, 10);
        assert_eq!(bold, [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]);
    }

    #[test]
    fn scientific_labels_are_short() {
        assert_eq!(format_scientific(1e-8, 3), "1e-8");
        // 10f64.powi(-7) is not exactly 1e-7; the label must not show the rounding error.
        assert_eq!(format_scientific(10f64.powf(-7.0), 3), "1e-7");
        assert_eq!(format_scientific(0.0025, 3), "2.5e-3");
        assert_eq!(format_scientific(-12345.0, 3), "-1.23e4");
    }

    #[test]
    fn linear_ticks_resolve_the_span() {
        let unit = linear_tick_formatter(-0.05, 1.05);
        assert_eq!(unit(&0.30000000000000004), "0.3");
        assert_eq!(unit(&1e-17), "0");
        assert_eq!(unit(&0.25), "0.25");
        let tiny = linear_tick_formatter(0.0, 3e-6);
        assert_eq!(tiny(&1.5e-6), "1.5e-6");
        assert_eq!(tiny(&0.0), "0");
        let steps = linear_tick_formatter(0.0, 200_000.0);
        assert_eq!(steps(&150_000.0), "1.5e5");
        let narrow = linear_tick_formatter(1.0001, 1.0005);
        assert_eq!(narrow(&1.0002), "1.0002");
    }

    #[test]
    fn numbers_are_labelled_compactly() {
        assert_eq!(format_number(1500.0), "1500");
        assert_eq!(format_number(-3.0), "-3");
        assert_eq!(format_number(0.25), "0.25");
        assert_eq!(format_number(1.5e-7), "1.5e-7");
        assert_eq!(format_number(123456.5), "1.23e5");
    }

    #[test]
    fn strides_follow_one_two_five() {
        let strides: Vec<usize> = [0, 1, 2, 3, 6, 11, 21, 70].iter().map(|&m| nice_stride(m)).collect();
        assert_eq!(strides, [1, 1, 2, 5, 10, 20, 50, 100]);
    }

    #[test]
    fn log_ticks_are_plain_only_for_moderate_ranges() {
        let plain = log_tick_formatter(0.01, 100.0);
        assert_eq!(plain(&0.01), "0.01");
        assert_eq!(plain(&100.0), "100");
        assert_eq!(plain(&0.0015), "0.0015");
        let scientific = log_tick_formatter(1e-8, 1.0);
        assert_eq!(scientific(&1e-8), "1e-8");
        assert_eq!(scientific(&1.0), "1e0");
    }
}
