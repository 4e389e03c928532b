//! [`NonFiniteDetector`]: finds the layer, direction and step where a NaN or infinity first
//! appeared, instead of letting it spread silently through the network.

use std::fmt;

use ndarray::{ArrayView, Dimension};
use serde::{Deserialize, Serialize};

use super::{BackwardEvent, Event, ForwardEvent, Hook};
use crate::{Error, Float};

/// Which pass a value was computed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// The forward pass (outputs).
    Forward,
    /// The backward pass (gradients).
    Backward,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Forward => "forward",
            Direction::Backward => "backward",
        })
    }
}

/// Where a NaN or infinity first appeared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonFiniteReport {
    /// The network's step counter.
    pub step: u64,
    /// Forward (an output) or backward (a gradient).
    pub direction: Direction,
    /// Dotted path of the layer, e.g. `"4"` or `"3.branch.1"`.
    pub path: String,
    /// The layer number (see [`crate::hooks::Event::layer_number`]), as the diagnosis tables
    /// number layers.
    #[serde(default)]
    pub layer_number: Option<usize>,
    /// The layer's kind, e.g. `"Linear"`.
    pub kind: String,
    /// Which array was not finite: `"output"`, `"input"` (the network's own input),
    /// `"grad_output"` (the gradient given to the network's last layer), `"grad_input"`, or
    /// `"gradient of weight"` (of any parameter, by its name).
    pub what: String,
    /// Number of NaN or infinite entries in that array.
    pub count: usize,
    /// Number of entries in that array.
    pub len: usize,
    /// What else is known, e.g. `"parameter weight holds 1 non-finite value"`.
    pub detail: String,
}

impl fmt::Display for NonFiniteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} of {} values of the {} are NaN or infinite; {}",
            self.location(),
            self.count,
            self.len,
            self.what,
            self.detail
        )
    }
}

impl NonFiniteReport {
    /// Where: `"layer 3 (path 4, Linear), forward, step 12"`, or `"path 4 (Linear), forward,
    /// step 12"` when the layer number is not known.
    pub fn location(&self) -> String {
        let layer = match self.layer_number {
            Some(n) => format!("layer {n} (path {}, {})", self.path, self.kind),
            None => format!("path {} ({})", self.path, self.kind),
        };
        format!("{layer}, {}, step {}", self.direction, self.step)
    }

    /// The report as an [`Error::NonFinite`], whose location is [`NonFiniteReport::location`].
    pub fn to_error(&self) -> Error {
        Error::NonFinite {
            location: self.location(),
            detail: format!(
                "{} of {} values of the {} are NaN or infinite; {}",
                self.count, self.len, self.what, self.detail
            ),
        }
    }
}

/// A hook that watches every layer's output (forward) and gradients (backward) and reports the
/// first place where a NaN or infinity appeared from finite inputs: the layer, the direction
/// and the step.
///
/// Events arrive in execution order (children before their container, forward in forward order,
/// backward from the top down), so the first non-finite array seen belongs to the layer that
/// produced it. After its first report the detector stays quiet and costs nothing, unless it
/// was made with [`NonFiniteDetector::fail_fast`]: then every pass in which a non-finite value
/// appears is stopped with [`Error::NonFinite`] naming the layer, and the report keeps the first
/// one.
///
/// ```
/// use gradflow::{Network, Sequential, Mode, Error};
/// use gradflow::activation::Tanh;
/// use gradflow::hooks::{NonFiniteDetector, Direction};
/// use ndarray::Array2;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let model = Sequential::<f32>::builder(4).repeat(3, 8, Tanh).linear(2).build(&mut rng)?;
/// let mut net = Network::new(model);
/// // Break one weight of layer "2" (the second Linear).
/// let layer = net.model_mut().get_mut(2).unwrap();
/// layer.visit_parameters_mut(&mut |mut p| if p.name == "weight" { p.value[[1, 3].as_slice()] = f32::NAN; });
///
/// let detector = net.attach_hook(NonFiniteDetector::fail_fast());
/// let err = net.forward(Array2::ones((2, 4)).view(), Mode::Train).unwrap_err();
/// assert!(matches!(err, Error::NonFinite { .. }));
/// let report = net.hook(detector).unwrap().report().unwrap();
/// assert_eq!((report.path.as_str(), report.direction, report.step), ("2", Direction::Forward, 0));
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct NonFiniteDetector {
    fail_fast: bool,
    report: Option<NonFiniteReport>,
}

impl NonFiniteDetector {
    /// A detector that records the first non-finite value and lets the pass go on.
    pub fn new() -> Self {
        Self::default()
    }

    /// A detector that also stops every pass in which a non-finite value appears, with
    /// [`Error::NonFinite`] naming the layer, direction and step (see [`Event::abort`]).
    pub fn fail_fast() -> Self {
        NonFiniteDetector { fail_fast: true, report: None }
    }

    /// Where the first NaN or infinity appeared, if one has.
    pub fn report(&self) -> Option<&NonFiniteReport> {
        self.report.as_ref()
    }

    /// Forgets the report and watches again.
    pub fn reset(&mut self) {
        self.report = None;
    }
}

/// The number of NaN or infinite entries of `a` (contiguous arrays: [`count_non_finite`]).
fn non_finite<F: Float, D: Dimension>(a: &ArrayView<'_, F, D>) -> usize {
    match a.as_slice_memory_order() {
        Some(slice) => F::count_non_finite(slice),
        None if a.iter().all(|x| x.is_finite()) => 0,
        None => a.iter().filter(|v| !v.is_finite()).count(),
    }
}

/// The number of NaN or infinite entries of `values`. The common case, none, is found with a
/// branch-free sum of `0 · x` (0 for finite `x`, NaN otherwise) that the compiler vectorizes. A
/// kernel ([`crate::kernels`]).
pub(crate) fn count_non_finite<F: Float>(values: &[F]) -> usize {
    const LANES: usize = 8;
    let mut lanes = [F::zero(); LANES];
    for chunk in values.chunks(LANES) {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += x * F::zero();
        }
    }
    if lanes.iter().all(|l| *l == F::zero()) { 0 } else { values.iter().filter(|v| !v.is_finite()).count() }
}

fn report<F: Float>(
    e: &Event<'_, F>,
    direction: Direction,
    what: impl Into<String>,
    count: usize,
    len: usize,
    detail: String,
) -> NonFiniteReport {
    NonFiniteReport {
        step: e.step(),
        direction,
        path: e.path().to_string(),
        layer_number: e.layer_number(),
        kind: e.kind().to_string(),
        what: what.into(),
        count,
        len,
        detail,
    }
}

fn check_forward<F: Float>(event: &Event<'_, F>, e: &ForwardEvent<'_, F>) -> Option<NonFiniteReport> {
    let count = non_finite(&e.output);
    if count == 0 {
        return None;
    }
    let bad_input = non_finite(&e.input);
    if bad_input > 0 {
        let detail = "the input given to the network is not finite".to_string();
        return Some(report(event, Direction::Forward, "input", bad_input, e.input.len(), detail));
    }
    let mut bad_params = Vec::new();
    e.layer.visit_parameters(&mut |p| {
        let n = non_finite(&p.value);
        if n > 0 {
            bad_params.push(format!("parameter {} holds {n} non-finite value{}", p.name, plural(n)));
        }
    });
    let detail = if bad_params.is_empty() {
        "its input and parameters are finite: the layer's computation overflowed".to_string()
    } else {
        bad_params.join(", ")
    };
    Some(report(event, Direction::Forward, "output", count, e.output.len(), detail))
}

fn check_backward<F: Float>(event: &Event<'_, F>, e: &BackwardEvent<'_, F>) -> Option<NonFiniteReport> {
    let count = non_finite(&e.grad_output);
    if count > 0 {
        let detail = "the gradient given to the network (the loss gradient) is not finite".to_string();
        return Some(report(event, Direction::Backward, "grad_output", count, e.grad_output.len(), detail));
    }
    let mut found = None;
    e.visit_parameters(&mut |p| {
        let n = non_finite(&p.grad);
        if found.is_none() && n > 0 {
            let detail = if non_finite(&p.value) > 0 {
                format!("parameter {} itself holds non-finite values", p.name)
            } else {
                "the gradient arriving from above is finite: the layer's backward overflowed".to_string()
            };
            found = Some(report(
                event,
                Direction::Backward,
                format!("gradient of {}", p.name),
                n,
                p.grad.len(),
                detail,
            ));
        }
    });
    if found.is_some() {
        return found;
    }
    let grad_input = e.grad_input()?;
    let count = non_finite(&grad_input);
    (count > 0).then(|| {
        let detail = "the gradient arriving from above is finite: the layer's backward (or a hook before \
                      this detector) made it non-finite"
            .to_string();
        report(event, Direction::Backward, "grad_input", count, grad_input.len(), detail)
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

impl<F: Float> Hook<F> for NonFiniteDetector {
    fn on_event(&mut self, event: &mut Event<'_, F>) {
        if self.report.is_some() && !self.fail_fast {
            return;
        }
        let found = match &*event {
            Event::Forward(e) => check_forward(event, e),
            Event::Backward(e) => check_backward(event, e),
            // Per-time-step states are checked through the recurrent layer's own events.
            Event::TimeStep(_) => None,
            // Optimizers refuse non-finite gradients before any update; a weight that overflows
            // shows in the outputs of the next forward pass.
            Event::Update(_) => None,
            // A non-finite gate shows in the layer's output (forward) or input gradient
            // (backward), checked at the layer's own event right after.
            Event::Gate(_) => None,
        };
        if let Some(found) = found {
            if self.fail_fast {
                event.abort(found.to_error());
            }
            self.report.get_or_insert(found);
        }
    }
}
