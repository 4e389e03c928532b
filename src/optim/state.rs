//! [`ParamStates`]: an optimizer's per-parameter state, kept in the model's visiting order,
//! together with the checks every step runs before it changes anything.

use ndarray::{ArrayViewD, ArrayViewMutD, Dimension};

use crate::error::format_shape;
use crate::layer::Layer;
use crate::param::ParamViewMut;
use crate::{Error, Float, Result, named_parameters};

/// One state slot `S` per parameter (e.g. a momentum buffer), in visiting order, built on the
/// first successful step; plus the shapes seen on that step and the number of steps taken.
#[derive(Debug, Clone)]
pub(crate) struct ParamStates<S> {
    shapes: Vec<Vec<usize>>,
    slots: Vec<S>,
    steps: u64,
}

impl<S> Default for ParamStates<S> {
    fn default() -> Self {
        ParamStates { shapes: Vec::new(), slots: Vec::new(), steps: 0 }
    }
}

impl<S> ParamStates<S> {
    /// The number of steps taken so far (0 before the first).
    pub(crate) fn steps(&self) -> u64 {
        self.steps
    }

    /// One optimizer step: checks `model` against the recorded layout, creates the slots with
    /// `init(shape)` on the first step, asks `preview(value, gradient, slot)` of every parameter
    /// whether its update stays finite — it must answer `false` for a non-finite gradient, whose
    /// update is never finite — and returns an error, with nothing changed, naming the first
    /// non-finite gradient or else the first update that is not finite; then calls `update` with
    /// each parameter, its slot and a [`Moved`], in visiting order. With an `observer`, the update loops report
    /// every entry's old and new value to the `Moved`, and `observer(i, Σ(new − old)²)` is
    /// called after the update of the `i`-th parameter.
    pub(crate) fn step<F: Float>(
        &mut self,
        optimizer: &str,
        model: &mut dyn Layer<F>,
        mut observer: Option<&mut dyn FnMut(usize, f64)>,
        init: impl Fn(&[usize]) -> S,
        preview: impl Fn(ArrayViewD<'_, F>, ArrayViewD<'_, F>, &S) -> bool,
        mut update: impl FnMut(ParamViewMut<'_, F>, &mut S, &mut Moved),
    ) -> Result<()> {
        self.check(optimizer, &*model, false)?;
        if self.steps == 0 {
            self.shapes.clear();
            let shapes = &mut self.shapes;
            model.visit_parameters(&mut |p| shapes.push(p.value.shape().to_vec()));
            self.slots = self.shapes.iter().map(|s| init(s)).collect();
        }
        // Every update computed once without being written: a step that would make a weight
        // (or a state entry) overflow to ±∞ or become NaN is refused with nothing changed. A
        // non-finite gradient gives a non-finite update, so this one pass also finds those; only
        // when it fails are the gradients scanned, to name a non-finite one as such.
        let mut overflowing = None;
        let mut index = 0;
        model.visit_parameters(&mut |p| {
            if overflowing.is_none()
                && let Some(slot) = self.slots.get(index)
                && !preview(p.value, p.grad, slot)
            {
                overflowing = Some(index);
            }
            index += 1;
        });
        if let Some(index) = overflowing {
            self.check(optimizer, &*model, true)?;
            let name = named_parameters(&*model)
                .into_iter()
                .nth(index)
                .map_or_else(|| "?".to_string(), |(name, _)| name);
            return Err(Error::NonFinite {
                location: format!("{optimizer} step {}", self.steps),
                detail: format!(
                    "the update of parameter {index} ({name}) would make a value infinite or NaN (the \
                     learning rate or the gradient is too large for {}); no parameter was changed",
                    F::NAME
                ),
            });
        }
        let slots = &mut self.slots;
        let mut index = 0;
        model.visit_parameters_mut(&mut |p| {
            if let Some(slot) = slots.get_mut(index) {
                let mut moved = Moved { observing: observer.is_some(), distance_sq: 0.0 };
                update(p, slot, &mut moved);
                if let Some(observer) = observer.as_deref_mut() {
                    observer(index, moved.distance_sq);
                }
            }
            index += 1;
        });
        self.steps += 1;
        Ok(())
    }

    /// Checks the parameter list against the one of the first step and, with `scan_gradients`,
    /// every gradient for NaN/∞.
    fn check<F: Float>(&self, optimizer: &str, model: &dyn Layer<F>, scan_gradients: bool) -> Result<()> {
        let initialized = self.steps > 0;
        let mut count = 0usize;
        let mut wrong_shape: Option<(usize, Vec<usize>)> = None;
        let mut non_finite: Option<(usize, String)> = None;
        model.visit_parameters(&mut |p| {
            if initialized
                && wrong_shape.is_none()
                && self.shapes.get(count).is_some_and(|s| s.as_slice() != p.value.shape())
            {
                wrong_shape = Some((count, p.value.shape().to_vec()));
            }
            if scan_gradients
                && non_finite.is_none()
                && let Some(description) = first_non_finite(&p.grad)
            {
                non_finite = Some((count, description));
            }
            count += 1;
        });
        let name_of = |index: usize| {
            named_parameters(model).into_iter().nth(index).map_or_else(|| "?".to_string(), |(name, _)| name)
        };
        if initialized && count != self.shapes.len() {
            return Err(Error::ShapeMismatch {
                layer: optimizer.to_string(),
                what: "parameter list",
                expected: format!("{} parameters (as on the first step)", self.shapes.len()),
                actual: format!("{count} parameters"),
            });
        }
        if let Some((index, shape)) = wrong_shape {
            return Err(Error::ShapeMismatch {
                layer: format!("{optimizer}: parameter {index} ({})", name_of(index)),
                what: "parameter",
                expected: format!("{} (its shape on the first step)", format_shape(&self.shapes[index])),
                actual: format_shape(&shape),
            });
        }
        if let Some((index, description)) = non_finite {
            return Err(Error::NonFinite {
                location: format!("{optimizer} step {}", self.steps),
                detail: format!(
                    "gradient of parameter {index} ({}) {description}; no parameter was changed",
                    name_of(index)
                ),
            });
        }
        Ok(())
    }
}

/// What an update loop reports, when the step is observed ([`crate::Network::step`]): how far
/// the parameter moved, Σ(new − old)² over its entries, measured inside the loop from the
/// values it holds anyway (no copy of the parameter).
#[derive(Debug)]
pub(crate) struct Moved {
    observing: bool,
    distance_sq: f64,
}

impl Moved {
    /// Whether the loop should report (otherwise it runs its plain form).
    #[inline(always)]
    pub(crate) fn observing(&self) -> bool {
        self.observing
    }

    /// One entry went from `old` to `new`.
    #[inline(always)]
    pub(crate) fn entry<F: Float>(&mut self, old: F, new: F) {
        if self.observing {
            let d = (new - old).as_f64();
            self.distance_sq += d * d;
        }
    }

    /// A loop that summed Σ(new − old)² itself.
    pub(crate) fn add(&mut self, distance_sq: f64) {
        self.distance_sq += distance_sq;
    }
}

/// An optional scalar of an update rule (a weight decay, a shrink factor) whose value is always
/// initialized: unlike an `Option`'s, so that a loop that computes both branches and picks one
/// (as the compiler may, to avoid a branch) never computes with an uninitialized value, which
/// may be a subnormal number and slow every operation down by a hundred times.
#[derive(Debug, Clone, Copy)]
pub struct Optional<F> {
    on: bool,
    /// The value when on, zero otherwise.
    value: F,
}

impl<F: Float> Optional<F> {
    /// `value` when `on`, nothing otherwise.
    pub(crate) fn new(on: bool, value: F) -> Self {
        Optional { on, value: if on { value } else { F::zero() } }
    }

    /// The value, if on.
    #[inline(always)]
    pub(crate) fn get(self) -> Option<F> {
        self.on.then_some(self.value)
    }

    /// `f(value)` if on, `default` otherwise.
    #[inline(always)]
    pub(crate) fn map_or(self, default: F, f: impl FnOnce(F) -> F) -> F {
        if self.on { f(self.value) } else { default }
    }
}

/// `value[i] = rule(value[i], grad[i])` over matching slices, vectorized, returning
/// Σ(new − old)²: summed in the parameter's type within blocks of 1024 entries and in `f64`
/// across blocks, as the recorder's statistics are.
#[inline(always)]
pub(crate) fn update_measured<F: Float>(value: &mut [F], grad: &[F], rule: impl Fn(F, F) -> F) -> f64 {
    use crate::hooks::{BLOCK, STAT_LANES};
    let mut total = 0.0;
    for (value, grad) in value.chunks_mut(BLOCK).zip(grad.chunks(BLOCK)) {
        let mut lanes = [F::zero(); STAT_LANES];
        let mut values = value.chunks_exact_mut(STAT_LANES);
        let grads = grad.chunks_exact(STAT_LANES);
        let rest = grads.remainder();
        for (v, g) in (&mut values).zip(grads) {
            // Computed into registers first: writing each lane back before the next is read
            // kept the compiler from vectorizing.
            let mut new = [F::zero(); STAT_LANES];
            for lane in 0..STAT_LANES {
                new[lane] = rule(v[lane], g[lane]);
            }
            for lane in 0..STAT_LANES {
                let d = new[lane] - v[lane];
                lanes[lane] += d * d;
            }
            v.copy_from_slice(&new);
        }
        for (lane, (v, &g)) in values.into_remainder().iter_mut().zip(rest).enumerate() {
            let old = *v;
            *v = rule(old, g);
            lanes[lane] += (*v - old) * (*v - old);
        }
        total += lanes.iter().fold(F::zero(), |sum, &x| sum + x).as_f64();
    }
    total
}

/// A parameter's value and gradient as two slices whose entries correspond one to one, when
/// both are contiguous with the same strides (always, unless a caller replaced a parameter by an
/// array of another layout); lets an update run as one vectorizable loop.
pub(crate) fn same_layout_slices<'a, F: Float>(
    value: &'a mut ArrayViewMutD<'_, F>,
    grad: &'a ArrayViewMutD<'_, F>,
) -> Option<(&'a mut [F], &'a [F])> {
    if value.shape() != grad.shape() || value.strides() != grad.strides() {
        return None;
    }
    let grad = grad.as_slice_memory_order()?;
    let value = value.as_slice_memory_order_mut()?;
    Some((value, grad))
}

/// Describes the first NaN/∞ entry of a gradient, e.g. `"is NaN at [0, 1]"`.
fn first_non_finite<F: Float>(grad: &ArrayViewD<'_, F>) -> Option<String> {
    if crate::float::all_finite_array(grad) {
        return None;
    }
    grad.indexed_iter()
        .find(|(_, v)| !v.is_finite())
        .map(|(index, v)| format!("is {v} at {:?}", index.slice()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Linear;
    use ndarray::{Array2, array};

    fn record(states: &mut ParamStates<usize>, model: &mut dyn Layer<f64>) -> Result<Vec<usize>> {
        let mut seen = Vec::new();
        states.step(
            "Test",
            model,
            None,
            |shape| shape.iter().product(),
            |_, grad, _| grad.iter().all(|g| g.is_finite()),
            |_, slot, _| seen.push(*slot),
        )?;
        Ok(seen)
    }

    #[test]
    fn slots_are_built_once_in_visiting_order() {
        let mut model = Linear::from_weights(Array2::<f64>::zeros((2, 3)), Some(array![0.0, 0.0])).unwrap();
        let mut states = ParamStates::default();
        assert_eq!(record(&mut states, &mut model).unwrap(), vec![6, 2]); // weight (2, 3), bias (2)
        assert_eq!(record(&mut states, &mut model).unwrap(), vec![6, 2]);
        assert_eq!(states.steps(), 2);
    }

    #[test]
    fn a_different_model_is_refused_naming_the_parameter() {
        let mut model = Linear::from_weights(Array2::<f64>::zeros((2, 3)), Some(array![0.0, 0.0])).unwrap();
        let mut states = ParamStates::default();
        record(&mut states, &mut model).unwrap();
        let mut wider = Linear::from_weights(Array2::<f64>::zeros((2, 4)), Some(array![0.0, 0.0])).unwrap();
        let msg = record(&mut states, &mut wider).unwrap_err().to_string();
        assert!(
            msg.contains("Test: parameter 0 (weight)") && msg.contains("(2, 3)") && msg.contains("(2, 4)"),
            "{msg}"
        );
        let mut no_bias = Linear::from_weights(Array2::<f64>::zeros((2, 3)), None).unwrap();
        let msg = record(&mut states, &mut no_bias).unwrap_err().to_string();
        assert!(msg.contains("2 parameters") && msg.contains("1 parameters"), "{msg}");
        assert_eq!(states.steps(), 1);
    }

    #[test]
    fn a_non_finite_gradient_stops_the_step_before_any_update() {
        let mut model = Linear::from_weights(Array2::<f64>::zeros((1, 2)), Some(array![0.0])).unwrap();
        model.visit_parameters_mut(&mut |p| {
            if p.name == "bias" {
                let mut grad = p.grad;
                grad[[0]] = f64::NEG_INFINITY;
            }
        });
        let mut states = ParamStates::default();
        let mut updates = 0;
        let err = states
            .step(
                "Test",
                &mut model,
                None,
                |_| (),
                |_, grad, _| grad.iter().all(|g| g.is_finite()),
                |_, _, _| updates += 1,
            )
            .unwrap_err();
        assert_eq!(updates, 0);
        match err {
            Error::NonFinite { location, detail } => {
                assert_eq!(location, "Test step 0");
                assert!(detail.contains("parameter 1 (bias) is -inf at [0]"), "{detail}");
            }
            other => panic!("expected NonFinite, got {other}"),
        }
        assert_eq!(states.steps(), 0);
    }
}
