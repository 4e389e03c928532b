//! Gradient clipping: by global L2 norm ([`clip_grad_norm`], `torch.nn.utils.clip_grad_norm_`)
//! and by value ([`clip_grad_value`], `torch.nn.utils.clip_grad_value_`) — the classic remedy for
//! *exploding* gradients.

use ndarray::Dimension;

use crate::layer::Layer;
use crate::{Error, Float, Result, named_parameters};

/// The L2 norm of all parameter gradients of `model` taken together, `√(Σ g²)` over every entry
/// of every parameter, accumulated in f64. NaN or ∞ when a gradient is.
///
/// ```
/// use gradflow::{Layer, Linear};
/// use gradflow::optim::global_grad_norm;
/// use ndarray::array;
///
/// let mut layer = Linear::from_weights(array![[0.0f32, 0.0]], Some(array![0.0]))?;
/// layer.visit_parameters_mut(&mut |mut p| p.grad.fill(2.0));
/// assert_eq!(global_grad_norm(&layer), 12f64.sqrt()); // √(3 · 2²)
/// # Ok::<(), gradflow::Error>(())
/// ```
pub fn global_grad_norm<F: Float>(model: &dyn Layer<F>) -> f64 {
    let mut sum = 0.0f64;
    model.visit_parameters(&mut |p| {
        sum += match p.grad.as_slice() {
            Some(grad) => F::sum_of_squares_f64(grad),
            None => p.grad.iter().map(|g| g.as_f64() * g.as_f64()).sum::<f64>(),
        };
    });
    sum.sqrt()
}

/// Scales all gradients of `model` together so that their global L2 norm is at most `max_norm`,
/// and returns the norm *before* clipping — `torch.nn.utils.clip_grad_norm_(params, max_norm)`
/// with `error_if_nonfinite=True`.
///
/// As in PyTorch, the scale is `max_norm / (total + 1e-6)` and is applied only when it is below 1,
/// so a clipped norm lands just under `max_norm`. The direction of the gradient is kept.
///
/// ```
/// use gradflow::{Layer, Linear};
/// use gradflow::optim::{clip_grad_norm, global_grad_norm};
/// use ndarray::array;
///
/// let mut layer = Linear::from_weights(array![[0.0, 0.0]], None)?;
/// layer.visit_parameters_mut(&mut |mut p| p.grad.assign(&array![[3.0, 4.0]].into_dyn()));
/// assert_eq!(clip_grad_norm(&mut layer, 1.0)?, 5.0);
/// assert!((global_grad_norm(&layer) - 1.0).abs() < 1e-6);
/// # Ok::<(), gradflow::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidConfig`] naming `max_norm` when it is not positive and finite;
/// [`Error::NonFinite`] naming the first parameter with a NaN or infinite gradient (nothing is
/// changed).
pub fn clip_grad_norm<F: Float>(model: &mut dyn Layer<F>, max_norm: f64) -> Result<f64> {
    if !(max_norm.is_finite() && max_norm > 0.0) {
        return Err(Error::config(
            "clip_grad_norm",
            "max_norm",
            format!("must be positive and finite, got {max_norm}"),
        ));
    }
    let total = global_grad_norm(&*model);
    if !total.is_finite() {
        return Err(Error::NonFinite {
            location: "clip_grad_norm".into(),
            detail: format!(
                "the total gradient norm is {total} ({}), so it cannot be clipped; no gradient was changed",
                first_non_finite(&*model)
            ),
        });
    }
    // torch.nn.utils.clip_grad_norm_: clip_coef = max_norm / (total_norm + 1e-6), clamped to 1.
    let clip_coef = max_norm / (total + 1e-6);
    if clip_coef < 1.0 {
        let scale = F::lit(clip_coef);
        model.visit_parameters_mut(&mut |mut p| match p.grad.as_slice_memory_order_mut() {
            Some(grad) => F::scale_in_place(grad, scale),
            None => p.grad.mapv_inplace(|g| g * scale),
        });
    }
    Ok(total)
}

/// Clamps every gradient entry of `model` to `[−clip_value, clip_value]` —
/// `torch.nn.utils.clip_grad_value_`.
///
/// ```
/// use gradflow::{Layer, Linear};
/// use gradflow::optim::clip_grad_value;
/// use ndarray::array;
///
/// let mut layer = Linear::from_weights(array![[0.0, 0.0]], None)?;
/// layer.visit_parameters_mut(&mut |mut p| p.grad.assign(&array![[-3.0, 0.5]].into_dyn()));
/// clip_grad_value(&mut layer, 1.0)?;
/// assert_eq!(layer.weight_grad(), array![[-1.0, 0.5]]);
/// # Ok::<(), gradflow::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidConfig`] naming `clip_value` when it is not positive and finite;
/// [`Error::NonFinite`] naming the first parameter with a NaN or infinite gradient (nothing is
/// changed: unlike PyTorch, which would clamp ±∞ and keep NaN, an overflow is reported rather
/// than hidden).
pub fn clip_grad_value<F: Float>(model: &mut dyn Layer<F>, clip_value: f64) -> Result<()> {
    if !(clip_value.is_finite() && clip_value > 0.0) {
        return Err(Error::config(
            "clip_grad_value",
            "clip_value",
            format!("must be positive and finite, got {clip_value}"),
        ));
    }
    let mut all_finite = true;
    model.visit_parameters(&mut |p| all_finite &= crate::float::all_finite_array(&p.grad.view()));
    if !all_finite {
        return Err(Error::NonFinite {
            location: "clip_grad_value".into(),
            detail: format!("{}; no gradient was changed", first_non_finite(&*model)),
        });
    }
    let (low, high) = (F::lit(-clip_value), F::lit(clip_value));
    model.visit_parameters_mut(&mut |mut p| match p.grad.as_slice_memory_order_mut() {
        Some(grad) => F::clamp_in_place(grad, low, high),
        None => p.grad.mapv_inplace(|g| g.max(low).min(high)),
    });
    Ok(())
}

/// Names the first parameter whose gradient has a NaN or ∞ entry.
fn first_non_finite<F: Float>(model: &dyn Layer<F>) -> String {
    named_parameters(model)
        .into_iter()
        .enumerate()
        .find_map(|(index, (name, p))| {
            p.grad
                .indexed_iter()
                .find(|(_, g)| !g.is_finite())
                .map(|(at, g)| format!("gradient of parameter {index} ({name}) is {g} at {:?}", at.slice()))
        })
        .unwrap_or_else(|| "the sum of squares overflowed".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::test_model::{model, set_grads};
    use crate::param::ParamView;

    fn grads<F: Float>(m: &dyn Layer<F>) -> Vec<f64> {
        let mut out = Vec::new();
        m.visit_parameters(&mut |p: ParamView<'_, F>| out.extend(p.grad.iter().map(|g| g.as_f64())));
        out
    }

    #[test]
    fn large_gradients_are_scaled_to_max_norm() {
        // g = [2, −4, 4]: ‖g‖ = √(4 + 16 + 16) = 6; max_norm 3 → scale 3 / (6 + 1e-6).
        let mut m = model::<f64>();
        set_grads(&mut m, [2.0, -4.0, 4.0]);
        let total = clip_grad_norm(&mut m, 3.0).unwrap();
        assert_eq!(total, 6.0);
        let scale = 3.0 / (6.0 + 1e-6);
        for (g, e) in grads(&m).iter().zip([2.0 * scale, -4.0 * scale, 4.0 * scale]) {
            assert!((g - e).abs() < 1e-15, "{g} vs {e}");
        }
        assert!((global_grad_norm(&m) - 3.0).abs() < 1e-6);
        assert!(global_grad_norm(&m) < 3.0);
    }

    #[test]
    fn small_gradients_are_left_alone_and_the_norm_returned() {
        // ‖[0.6, 0, 0.8]‖ = 1 ≤ 2
        let mut m = model::<f32>();
        set_grads(&mut m, [0.6, 0.0, 0.8]);
        let total = clip_grad_norm(&mut m, 2.0).unwrap();
        assert!((total - 1.0).abs() < 1e-7, "{total}");
        assert_eq!(grads(&m), vec![0.6f32 as f64, 0.0, 0.8f32 as f64]);
    }

    #[test]
    fn non_finite_norm_is_an_error_and_changes_nothing() {
        let mut m = model::<f64>();
        set_grads(&mut m, [100.0, f64::NAN, 1.0]);
        let err = clip_grad_norm(&mut m, 1.0).unwrap_err();
        match &err {
            Error::NonFinite { location, detail } => {
                assert_eq!(location, "clip_grad_norm");
                assert!(detail.contains("parameter 0 (weight) is NaN at [0, 1]"), "{detail}");
            }
            other => panic!("expected NonFinite, got {other}"),
        }
        assert_eq!(grads(&m)[0], 100.0);
        assert_eq!(grads(&m)[2], 1.0);
    }

    #[test]
    fn clip_by_value_clamps_each_entry() {
        let mut m = model::<f64>();
        set_grads(&mut m, [2.5, -0.3, -7.0]);
        clip_grad_value(&mut m, 1.0).unwrap();
        assert_eq!(grads(&m), vec![1.0, -0.3, -1.0]);
        set_grads(&mut m, [2.5, f64::INFINITY, -7.0]);
        let err = clip_grad_value(&mut m, 1.0).unwrap_err();
        assert!(matches!(err, Error::NonFinite { .. }), "{err}");
        assert_eq!(grads(&m)[0], 2.5);
    }

    #[test]
    fn non_positive_limits_are_refused() {
        let mut m = model::<f64>();
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = clip_grad_norm(&mut m, bad).unwrap_err();
            assert!(matches!(err, Error::InvalidConfig { field: "max_norm", .. }), "{err}");
            let err = clip_grad_value(&mut m, bad).unwrap_err();
            assert!(matches!(err, Error::InvalidConfig { field: "clip_value", .. }), "{err}");
        }
    }
}
