//! The Illinois method: a bracketing root finder (regula falsi that halves the weight of an end
//! point kept twice), as robust as bisection and superlinear on smooth functions (Dowell &
//! Jarratt 1971, "A modified regula falsi method for computing the root of an equation").

use crate::Result;

/// A root of `f` in `[a, b]`, where `f(a)` and `f(b)` have opposite signs (or one is 0), to a
/// bracket width of `relative · max(|a|, |b|)` (or 10⁻³⁰⁰ absolutely); at most 200 steps, then
/// the best point found. `f`'s errors are passed on.
pub(crate) fn illinois(f: &mut dyn FnMut(f64) -> Result<f64>, a: f64, b: f64, relative: f64) -> Result<f64> {
    let (mut a, mut b) = (a, b);
    let (mut fa, mut fb) = (f(a)?, f(b)?);
    if fa == 0.0 {
        return Ok(a);
    }
    if fb == 0.0 {
        return Ok(b);
    }
    debug_assert!(fa.signum() != fb.signum(), "illinois: [{a}, {b}] does not bracket a root ({fa}, {fb})");
    let mut side = 0i8;
    for _ in 0..200 {
        let width = (b - a).abs();
        if width <= relative * a.abs().max(b.abs()) || width <= 1e-300 {
            break;
        }
        // The secant point, kept strictly inside the bracket (bisect when it is not).
        let mut c = (a * fb - b * fa) / (fb - fa);
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        if !(c > lo && c < hi) {
            c = 0.5 * (a + b);
        }
        let fc = f(c)?;
        if fc == 0.0 {
            return Ok(c);
        }
        if fc.signum() == fb.signum() {
            // c replaces b; a is kept: if a was kept last time too, halve its weight.
            b = c;
            fb = fc;
            if side == -1 {
                fa *= 0.5;
            }
            side = -1;
        } else {
            a = c;
            fa = fc;
            if side == 1 {
                fb *= 0.5;
            }
            side = 1;
        }
    }
    Ok(if fa.abs() < fb.abs() { a } else { b })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_roots_of_smooth_and_kinked_functions() {
        let root = illinois(&mut |x| Ok(x * x - 2.0), 0.0, 2.0, 1e-15).unwrap();
        assert!((root - std::f64::consts::SQRT_2).abs() < 1e-15, "{root}");
        let root = illinois(&mut |x| Ok(x.cos() - x), 1.0, 0.0, 1e-15).unwrap();
        assert!((root.cos() - root).abs() < 1e-15, "{root}");
        // A kink and a very flat side: regula falsi alone would crawl.
        let root = illinois(
            &mut |x: f64| Ok(if x < 0.3 { (x - 0.3) * 1e-6 } else { (x - 0.3) * 1e6 }),
            0.0,
            1.0,
            1e-14,
        )
        .unwrap();
        assert!((root - 0.3).abs() < 1e-13, "{root}");
        assert_eq!(illinois(&mut |x| Ok(x - 1.0), 1.0, 3.0, 1e-12).unwrap(), 1.0);
    }

    #[test]
    fn errors_of_the_function_are_passed_on() {
        let err = illinois(&mut |_| Err(crate::Error::config("t", "x", "no")), 0.0, 1.0, 1e-12).unwrap_err();
        assert!(err.to_string().contains("no"));
    }
}
