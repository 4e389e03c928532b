//! [`Highway`]: the gated skip connection of Srivastava, Greff & Schmidhuber (2015),
//! `y = H(x)·T(x) + x·(1 − T(x))`.

use std::sync::Arc;

use ndarray::{Array2, ArrayView2, Zip};
use rand::RngCore;

use super::child_names::ChildNames;
use super::{Linear, LinearConfig};
use crate::activation::stable_sigmoid as sigmoid;
use crate::activation::{Act, Activation, Relu};
use crate::hooks::{Context, Direction, Gate, GateFunction};
use crate::init::{Initializer, LinearDefault};
use crate::layer::{Layer, Mode, check_shape, ensure_shape};
use crate::param::{ParamView, ParamViewMut};
use crate::vectorize::vectorized;
use crate::{Error, Float, Result};

/// How to build a [`Highway`] layer: width, activation of `H`, gate bias and initializers.
#[derive(Debug, Clone)]
pub struct HighwayConfig<F: Float> {
    /// Input and output width `d` (a highway layer cannot change the width).
    pub width: usize,
    /// The activation of the transform `H(x) = act(W_H x + b_H)` (default ReLU, as in the
    /// paper's experiments).
    pub activation: Arc<dyn Activation<F>>,
    /// The initial bias `b_T` of every gate unit (default −2, in the middle of the range −1 … −3
    /// the paper suggests; see [`Highway`] for why deep stacks need −4 or lower).
    pub gate_bias: f64,
    /// Initializer of both weight matrices (default PyTorch's `nn.Linear` one; the transform's
    /// gets the activation's gain, the gate's gain 1).
    pub weight_init: Arc<dyn Initializer>,
    /// Initializer of the transform's bias `b_H` (default PyTorch's `nn.Linear` one).
    pub bias_init: Arc<dyn Initializer>,
}

impl<F: Float> HighwayConfig<F> {
    /// A highway layer of width `width` with the defaults: ReLU, `gate_bias = −2`, PyTorch's
    /// `nn.Linear` initialization.
    pub fn new(width: usize) -> Self {
        HighwayConfig {
            width,
            activation: Arc::new(Relu),
            gate_bias: -2.0,
            weight_init: Arc::new(LinearDefault),
            bias_init: Arc::new(LinearDefault),
        }
    }

    /// Sets the activation of `H`.
    pub fn activation(mut self, activation: impl Activation<F> + 'static) -> Self {
        self.activation = Arc::new(activation);
        self
    }

    /// Sets the initial gate bias `b_T`.
    pub fn gate_bias(mut self, gate_bias: f64) -> Self {
        self.gate_bias = gate_bias;
        self
    }

    /// Sets the weight initializer.
    pub fn weight_init(mut self, init: impl Initializer + 'static) -> Self {
        self.weight_init = Arc::new(init);
        self
    }

    /// Sets the initializer of the transform's bias.
    pub fn bias_init(mut self, init: impl Initializer + 'static) -> Self {
        self.bias_init = Arc::new(init);
        self
    }

    /// Builds the layer, drawing the transform's weight and bias, then the gate's weight, from
    /// `rng`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field when the width is 0 or the gate bias is not
    /// finite, or when an initializer refuses.
    pub fn build(&self, rng: &mut dyn RngCore) -> Result<Highway<F>> {
        let d = self.width;
        if d == 0 {
            return Err(Error::config("Highway", "width", "must be at least 1, got 0"));
        }
        if !self.gate_bias.is_finite() {
            return Err(Error::config(
                "Highway",
                "gate_bias",
                format!("must be finite, got {}", self.gate_bias),
            ));
        }
        crate::checks::setting::<F>("Highway", "gate_bias", self.gate_bias, crate::checks::Needs::Finite)?;
        let transform = LinearConfig {
            in_features: d,
            out_features: d,
            bias: true,
            weight_init: self.weight_init.clone(),
            bias_init: self.bias_init.clone(),
            activation_gain: self.activation.gain(),
        }
        .build(rng)
        .map_err(|e| e.at(&"transform"))?;
        let gate_weights: Linear<F> = LinearConfig {
            in_features: d,
            out_features: d,
            bias: false,
            weight_init: self.weight_init.clone(),
            bias_init: self.bias_init.clone(),
            activation_gain: 1.0,
        }
        .build(rng)
        .map_err(|e| e.at(&"gate"))?;
        let gate_bias = ndarray::Array1::from_elem(d, F::lit(self.gate_bias));
        let gate = Linear::from_weights(gate_weights.weight().clone(), Some(gate_bias))?;
        Ok(Highway {
            transform,
            activation: Act::from_shared(self.activation.clone()),
            gate,
            names: ChildNames::new(["transform", "activation", "gate"]),
            width: d,
            h_pre: Array2::zeros((0, 0)),
            h: Array2::zeros((0, 0)),
            t_pre: Array2::zeros((0, 0)),
            t: Array2::zeros((0, 0)),
            grad_h: Array2::zeros((0, 0)),
            grad_h_pre: Array2::zeros((0, 0)),
            grad_t_pre: Array2::zeros((0, 0)),
            grad_x_transform: Array2::zeros((0, 0)),
            grad_t: Array2::zeros((0, 0)),
            forward_batch: None,
        })
    }
}

/// A highway layer (Srivastava, Greff & Schmidhuber 2015, "Highway Networks" /
/// "Training Very Deep Networks"):
///
/// `y = H(x) ⊙ T(x) + x ⊙ (1 − T(x))`, with the transform `H(x) = act(W_H x + b_H)` and the
/// transform gate `T(x) = σ(W_T x + b_T)`; `1 − T` is the carry gate.
///
/// Its children are `"transform"` (the [`Linear`] `W_H, b_H`), `"activation"` (the [`Act`] of
/// `H`) and `"gate"` (the [`Linear`] `W_T, b_T`; the sigmoid is applied by the layer), so
/// parameters are named `"transform.weight"`, `"transform.bias"`, `"gate.weight"`,
/// `"gate.bias"` — or, after [`Layer::rename_child`] (e.g. to a PyTorch module's `H` and `T`),
/// under the new names.
///
/// Why the gradient reaching early layers cannot vanish through it: the carry path adds the term
/// `dL/dy ⊙ (1 − T(x))` to `dL/dx`, handing the incoming gradient straight to `x` without
/// multiplying it by any weight matrix or activation derivative, so wherever the gate is closed
/// (`T ≈ 0`) the layer passes the gradient through almost unchanged.
///
/// # Choosing the gate bias
/// The paper initializes `b_T` negative ("e.g. −1, −3"; Srivastava et al. 2015, "Training Very
/// Deep Networks", §2.2) so that every layer starts close to carrying its input. At
/// initialization each layer multiplies the carried signal (and gradient) by about `1 − σ(b_T)`,
/// so a stack of `n` layers multiplies it by `(1 − σ(b_T))ⁿ`: with the default `b_T = −2` that is `0.88⁵⁰ ≈ 0.002` for 50 layers, with
/// `b_T = −4` it is `0.98⁵⁰ ≈ 0.4`. For stacks of 50 layers or more use `b_T ≤ −4`.
///
/// # Shapes
/// input `(batch, d)` → output `(batch, d)`; the width cannot change.
///
/// # Gradients
/// `dH = dy ⊙ T`, `dT_pre = dy ⊙ (H − x) ⊙ T(1 − T)`, and
/// `dx = dy ⊙ (1 − T) + W_Hᵀ(dH ⊙ act′) + W_Tᵀ dT_pre`.
///
/// # Hooks
/// Besides the events of its children, the layer shows hooks the gate itself in a
/// [`crate::hooks::GateEvent`] (gate `"T"`): `T(x)` after its forward pass, and `T(x)` with
/// `dL/dT = dy ⊙ (H − x)` after its backward pass. The gate of the last forward pass is also
/// [`Highway::last_gate`].
///
/// ```
/// use gradflow::{Highway, HighwayConfig, Layer};
/// use gradflow::activation::Tanh;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let layer = HighwayConfig::<f32>::new(32).activation(Tanh).gate_bias(-4.0).build(&mut rng)?;
/// assert_eq!(layer.gate().bias().unwrap()[0], -4.0);
/// assert_eq!(layer.num_parameters(), 2 * (32 * 32 + 32));
/// assert!(layer.output_features(16).is_err()); // a highway layer keeps its width
/// # Ok::<(), gradflow::Error>(())
/// ```
pub struct Highway<F: Float> {
    transform: Linear<F>,
    activation: Act<F>,
    gate: Linear<F>,
    /// The children's names, by role ([`TRANSFORM`], [`ACTIVATION`], [`GATE_CHILD`]).
    names: ChildNames<3>,
    width: usize,
    /// W_H x + b_H, H = act(h_pre), W_T x + b_T, T = σ(t_pre): `(batch, d)` each.
    h_pre: Array2<F>,
    h: Array2<F>,
    t_pre: Array2<F>,
    t: Array2<F>,
    /// Backward scratch.
    grad_h: Array2<F>,
    grad_h_pre: Array2<F>,
    grad_t_pre: Array2<F>,
    grad_x_transform: Array2<F>,
    /// dL/dT, computed for observed backward passes only (shown in [`crate::hooks::GateEvent`]).
    grad_t: Array2<F>,
    forward_batch: Option<usize>,
}

/// The roles of a highway layer's children, in [`ChildNames`].
const TRANSFORM: usize = 0;
const ACTIVATION: usize = 1;
const GATE_CHILD: usize = 2;

/// The gate a highway layer shows hooks in its [`crate::hooks::GateEvent`]s.
const GATE: Gate = Gate { name: "T", function: GateFunction::Sigmoid };

impl<F: Float> std::fmt::Debug for Highway<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl<F: Float> Highway<F> {
    /// A highway layer of width `width` with activation `activation` for `H` and gate bias
    /// `gate_bias`, other settings as in [`HighwayConfig::new`].
    ///
    /// # Errors
    /// As [`HighwayConfig::build`].
    pub fn new(
        width: usize,
        activation: impl Activation<F> + 'static,
        gate_bias: f64,
        rng: &mut dyn RngCore,
    ) -> Result<Self> {
        HighwayConfig::new(width).activation(activation).gate_bias(gate_bias).build(rng)
    }

    /// The width `d`.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The transform's linear part `W_H, b_H`.
    pub fn transform(&self) -> &Linear<F> {
        &self.transform
    }

    /// The transform's linear part, mutably.
    pub fn transform_mut(&mut self) -> &mut Linear<F> {
        &mut self.transform
    }

    /// The gate's linear part `W_T, b_T`.
    pub fn gate(&self) -> &Linear<F> {
        &self.gate
    }

    /// The gate's linear part, mutably.
    pub fn gate_mut(&mut self) -> &mut Linear<F> {
        &mut self.gate
    }

    /// The transform gate `T(x)` of the last forward pass, `(batch, d)` (empty before one).
    pub fn last_gate(&self) -> ArrayView2<'_, F> {
        self.t.view()
    }
}

impl<F: Float> Layer<F> for Highway<F> {
    fn kind(&self) -> &'static str {
        "Highway"
    }

    fn describe(&self) -> String {
        format!("Highway({}, {})", self.width, self.activation.activation().name())
    }

    fn output_features(&self, input_features: usize) -> Result<usize> {
        if input_features != self.width {
            return Err(Error::ShapeMismatch {
                layer: self.describe(),
                what: "input",
                expected: format!("(batch, {}) (a highway layer keeps its width)", self.width),
                actual: format!("(batch, {input_features})"),
            });
        }
        Ok(self.width)
    }

    fn forward(
        &mut self,
        input: ArrayView2<'_, F>,
        output: &mut Array2<F>,
        mode: Mode,
        ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        self.forward_batch = None;
        check_shape(&|| self.describe(), "input", &input, None, Some(self.width))?;
        let dim = input.dim();
        let names = &self.names;
        let (transform, activation, gate) =
            (names.get(TRANSFORM), names.get(ACTIVATION), names.get(GATE_CHILD));
        ctx.forward_child(&transform, &mut self.transform, input.view(), &mut self.h_pre, mode)?;
        ctx.forward_child(&activation, &mut self.activation, self.h_pre.view(), &mut self.h, mode)?;
        ctx.forward_child(&gate, &mut self.gate, input.view(), &mut self.t_pre, mode)?;
        // The children may have been replaced by ones of another width (`transform_mut`).
        for (what, got) in [("transform output", self.h.dim()), ("gate output", self.t_pre.dim())] {
            if got != dim {
                return Err(Error::ShapeMismatch {
                    layer: self.describe(),
                    what,
                    expected: crate::error::format_shape(&[dim.0, dim.1]),
                    actual: crate::error::format_shape(&[got.0, got.1]),
                });
            }
        }
        ensure_shape(&mut self.t, dim);
        let t = self.t.as_slice_mut().expect("buffers are standard layout");
        F::highway_gate(self.t_pre.as_slice().expect("buffers are standard layout"), t);
        // y = H·T + x·(1 − T) = x + T·(H − x)
        ensure_shape(output, dim);
        match input.as_slice() {
            Some(x) => F::highway_combine(
                x,
                self.h.as_slice().expect("buffers are standard layout"),
                self.t.as_slice().expect("buffers are standard layout"),
                output.as_slice_mut().expect("buffers are standard layout"),
            ),
            // Strided input (a rare path).
            None => Zip::from(output)
                .and(&input)
                .and(&self.h)
                .and(&self.t)
                .for_each(|y, &x, &h, &t| *y = x + t * (h - x)),
        }
        let this = &*self;
        ctx.emit_gate(this, Direction::Forward, GATE, this.t.view(), None)?;
        self.forward_batch = Some(dim.0);
        Ok(())
    }

    fn backward(
        &mut self,
        input: ArrayView2<'_, F>,
        _output: ArrayView2<'_, F>,
        grad_output: ArrayView2<'_, F>,
        mut grad_input: Option<&mut Array2<F>>,
        ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        let Some(batch) = self.forward_batch else {
            return Err(Error::BackwardBeforeForward { layer: self.describe() });
        };
        let name = || self.describe();
        check_shape(&name, "input", &input, Some(batch), Some(self.width))?;
        check_shape(&name, "grad_output", &grad_output, Some(batch), Some(self.width))?;
        let dim = input.dim();
        ensure_shape(&mut self.grad_h, dim);
        ensure_shape(&mut self.grad_t_pre, dim);
        match (grad_output.as_slice(), input.as_slice()) {
            (Some(dy), Some(x)) => F::highway_backward(
                &GateRows {
                    dy,
                    x,
                    h: self.h.as_slice().expect("buffers are standard layout"),
                    t: self.t.as_slice().expect("buffers are standard layout"),
                },
                self.grad_h.as_slice_mut().expect("buffers are standard layout"),
                self.grad_t_pre.as_slice_mut().expect("buffers are standard layout"),
            ),
            // Strided arrays (a rare path).
            _ => Zip::from(&mut self.grad_h)
                .and(&mut self.grad_t_pre)
                .and(&grad_output)
                .and(&input)
                .and(&self.h)
                .and(&self.t)
                .for_each(|dh, dt, &dy, &x, &h, &t| {
                    *dh = dy * t;
                    *dt = dy * (h - x) * t * (F::one() - t);
                }),
        }

        // Gate: its input gradient goes straight into grad_input; the others are added to it.
        let gate_out = self.t_pre.view();
        ctx.backward_child(
            &self.names.get(GATE_CHILD),
            &mut self.gate,
            input,
            gate_out,
            self.grad_t_pre.view(),
            grad_input.as_deref_mut(),
        )?;
        let h_pre = self.h_pre.view();
        let g_h_pre = Some(&mut self.grad_h_pre);
        ctx.backward_child(
            &self.names.get(ACTIVATION),
            &mut self.activation,
            h_pre,
            self.h.view(),
            self.grad_h.view(),
            g_h_pre,
        )?;
        let g_x = grad_input.is_some().then_some(&mut self.grad_x_transform);
        let name = self.names.get(TRANSFORM);
        ctx.backward_child(&name, &mut self.transform, input, h_pre, self.grad_h_pre.view(), g_x)?;

        if let Some(grad_input) = grad_input {
            // Carry path: dy ⊙ (1 − T), plus what the transform sent down.
            match grad_output.as_slice() {
                Some(dy) => F::highway_carry(
                    self.grad_x_transform.as_slice().expect("buffers are standard layout"),
                    dy,
                    self.t.as_slice().expect("buffers are standard layout"),
                    grad_input.as_slice_mut().expect("buffers are standard layout"),
                ),
                // Strided gradient (a rare path).
                None => Zip::from(grad_input)
                    .and(&self.grad_x_transform)
                    .and(&grad_output)
                    .and(&self.t)
                    .for_each(|dx, &dxh, &dy, &t| *dx += dxh + dy * (F::one() - t)),
            }
        }
        if ctx.is_observed() {
            // dL/dT = dy ⊙ (H − x), for the hooks only.
            ensure_shape(&mut self.grad_t, dim);
            Zip::from(&mut self.grad_t)
                .and(&grad_output)
                .and(&self.h)
                .and(&input)
                .for_each(|dt, &dy, &h, &x| *dt = dy * (h - x));
            let this = &*self;
            ctx.emit_gate(this, Direction::Backward, GATE, this.t.view(), Some(this.grad_t.view()))?;
        }
        Ok(())
    }

    fn visit_parameters<'a>(&'a self, visitor: &mut dyn FnMut(ParamView<'a, F>)) {
        self.transform.visit_parameters(visitor);
        self.activation.visit_parameters(visitor);
        self.gate.visit_parameters(visitor);
    }

    fn visit_parameters_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(ParamViewMut<'a, F>)) {
        self.transform.visit_parameters_mut(visitor);
        self.activation.visit_parameters_mut(visitor);
        self.gate.visit_parameters_mut(visitor);
    }

    fn visit_children<'a>(&'a self, visitor: &mut dyn FnMut(&str, &'a dyn Layer<F>)) {
        visitor(self.names.get(TRANSFORM), &self.transform);
        visitor(self.names.get(ACTIVATION), &self.activation);
        visitor(self.names.get(GATE_CHILD), &self.gate);
    }

    fn child_mut(&mut self, name: &str) -> Option<&mut dyn Layer<F>> {
        match self.names.index_of(name)? {
            TRANSFORM => Some(&mut self.transform),
            ACTIVATION => Some(&mut self.activation),
            _ => Some(&mut self.gate),
        }
    }

    fn rename_child(&mut self, from: &str, to: &str) -> Result<()> {
        self.names.rename(&self.describe(), from, to, [true; 3], &|_| false)
    }
}

/// `t = σ(z)`, the gate. A kernel ([`crate::kernels`]).
pub(crate) fn gate<F: Float>(z: &[F], t: &mut [F]) {
    vectorized(
        #[inline(always)]
        || t.iter_mut().zip(z).for_each(|(t, &z)| *t = sigmoid(z)),
    )
}

/// `y = x + t·(h − x)`. A kernel ([`crate::kernels`]).
pub(crate) fn combine<F: Float>(x: &[F], h: &[F], t: &[F], y: &mut [F]) {
    vectorized(
        #[inline(always)]
        || {
            for (((y, &x), &h), &t) in y.iter_mut().zip(x).zip(h).zip(t) {
                *y = x + t * (h - x);
            }
        },
    )
}

/// What a backward pass reads, entry by entry: dL/dy, the input, `H(x)` and the gate.
pub struct GateRows<'a, F> {
    dy: &'a [F],
    x: &'a [F],
    h: &'a [F],
    t: &'a [F],
}

/// `dh = dy·t` and `dt = dy·(h − x)·t·(1 − t)` (the gradient of the gate's pre-activation). A
/// kernel ([`crate::kernels`]).
pub(crate) fn backward<F: Float>(rows: &GateRows<'_, F>, grad_h: &mut [F], grad_t_pre: &mut [F]) {
    let GateRows { dy, x, h, t } = *rows;
    vectorized(
        #[inline(always)]
        || {
            let entries =
                grad_h.iter_mut().zip(grad_t_pre.iter_mut()).zip(dy.iter().zip(x)).zip(h.iter().zip(t));
            for (((dh, dt), (&dy, &x)), (&h, &t)) in entries {
                *dh = dy * t;
                *dt = dy * (h - x) * t * (F::one() - t);
            }
        },
    )
}

/// `dx += dx_transform + dy·(1 − t)`: the carry path plus what the transform sent down. A kernel
/// ([`crate::kernels`]).
pub(crate) fn carry<F: Float>(dx_transform: &[F], dy: &[F], t: &[F], grad_x: &mut [F]) {
    vectorized(
        #[inline(always)]
        || {
            for (((dx, &dxh), &dy), &t) in grad_x.iter_mut().zip(dx_transform).zip(dy).zip(t) {
                *dx += dxh + dy * (F::one() - t);
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use approx::assert_abs_diff_eq;

    use super::*;
    use crate::activation::Tanh;
    use crate::gradcheck::{GradCheckConfig, check_layer};
    use rand::SeedableRng;

    fn input(rows: usize, cols: usize) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |(i, j)| ((i * 5 + j * 3) % 7) as f64 / 3.0 - 1.0)
    }

    #[test]
    fn forward_matches_the_definition() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut layer =
            HighwayConfig::<f64>::new(3).activation(Tanh).gate_bias(-1.0).build(&mut rng).unwrap();
        let x = input(2, 3);
        let mut y = Array2::zeros((0, 0));
        layer.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
        // Recompute from the weights: H = tanh(x W_Hᵀ + b_H), T = σ(x W_Tᵀ + b_T).
        let h = (x.dot(&layer.transform().weight().t()) + layer.transform().bias().unwrap()).mapv(f64::tanh);
        let z = x.dot(&layer.gate().weight().t()) + layer.gate().bias().unwrap();
        let t = z.mapv(|z| 1.0 / (1.0 + (-z).exp()));
        let expected = &h * &t + &x * &t.mapv(|t| 1.0 - t);
        assert_abs_diff_eq!(y, expected, epsilon = 1e-14);
    }

    #[test]
    fn gradients_pass_finite_difference_check() {
        for (activation, seed) in [(Arc::new(Tanh) as Arc<dyn Activation<f64>>, 2), (Arc::new(Relu), 3)] {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let config = HighwayConfig { activation, gate_bias: -0.5, ..HighwayConfig::new(4) };
            let mut layer = config.build(&mut rng).unwrap();
            let report = check_layer(&mut layer, &input(3, 4), GradCheckConfig::default()).unwrap();
            let names: Vec<&str> = report.tensors.iter().map(|t| t.name.as_str()).collect();
            assert_eq!(names, ["input", "transform.weight", "transform.bias", "gate.weight", "gate.bias"]);
            report.within(1e-6).unwrap();
        }
    }

    #[test]
    fn a_closed_gate_makes_the_layer_the_identity_for_values_and_gradients() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let mut layer = Highway::<f64>::new(5, Relu, -40.0, &mut rng).unwrap();
        let x = input(3, 5);
        let mut y = Array2::zeros((0, 0));
        layer.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
        let dy = Array2::from_shape_fn((3, 5), |(i, j)| i as f64 - 0.7 * j as f64);
        let mut dx = Array2::zeros((0, 0));
        layer.backward(x.view(), y.view(), dy.view(), Some(&mut dx), &mut Context::new()).unwrap();
        // σ(−40) ≈ 4e−18 (weights are small, so W_T x does not move it much).
        assert_abs_diff_eq!(y, x, epsilon = 1e-12);
        assert_abs_diff_eq!(dx, dy, epsilon = 1e-12);
    }

    #[test]
    fn width_mismatch_is_a_clear_error() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut layer = Highway::<f64>::new(4, Relu, -2.0, &mut rng).unwrap();
        let mut y = Array2::zeros((0, 0));
        let err = layer.forward(input(2, 3).view(), &mut y, Mode::Train, &mut Context::new()).unwrap_err();
        assert!(err.to_string().contains("Highway(4, relu)") && err.to_string().contains("(2, 3)"), "{err}");
        let err = layer.output_features(6).unwrap_err();
        assert!(err.to_string().contains("keeps its width"), "{err}");
    }

    #[test]
    fn invalid_configuration_names_the_field() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(6);
        let err = Highway::<f32>::new(0, Relu, -2.0, &mut rng).unwrap_err();
        assert!(err.to_string().contains("width"), "{err}");
        let err = Highway::<f32>::new(3, Relu, f64::NAN, &mut rng).unwrap_err();
        assert!(err.to_string().contains("gate_bias"), "{err}");
    }

    #[test]
    fn the_gate_starts_at_the_sigmoid_of_its_bias_and_stays_finite_for_huge_inputs() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut layer = Highway::<f32>::new(3, Tanh, -4.0, &mut rng).unwrap();
        let mut y = Array2::zeros((0, 0));
        layer.forward(Array2::<f32>::zeros((2, 3)).view(), &mut y, Mode::Eval, &mut Context::new()).unwrap();
        let expected = 1.0 / (1.0 + 4f32.exp());
        assert!(layer.last_gate().iter().all(|&t| (t - expected).abs() < 1e-7));
        let big = Array2::from_elem((2, 3), 1e4f32);
        layer.forward(big.view(), &mut y, Mode::Eval, &mut Context::new()).unwrap();
        assert!(y.iter().all(|v| v.is_finite()), "{y}");
    }

    #[test]
    fn the_carried_gradient_of_a_50_layer_stack_is_the_documented_power() {
        // With zero weight matrices T = σ(b_T) exactly and only the carry path passes gradient,
        // so dL/dx = dL/dy · (1 − σ(b_T))⁵⁰: ≈ 0.002 for b_T = −2 and ≈ 0.4 for b_T = −4.
        for (gate_bias, bound_low, bound_high) in [(-2.0, 0.001, 0.003), (-4.0, 0.39, 0.41)] {
            let mut rng = rand::rngs::StdRng::seed_from_u64(8);
            let model = crate::Sequential::<f64>::builder(4)
                .repeat_highway(50, Relu, gate_bias)
                .build(&mut rng)
                .unwrap();
            let mut net = crate::Network::new(model);
            net.visit_parameters_mut(&mut |p| {
                if p.name == "weight" {
                    let mut value = p.value;
                    value.fill(0.0);
                }
            });
            net.forward(input(2, 4).view(), Mode::Train).unwrap();
            let dy = Array2::ones((2, 4));
            let dx = net.backward_with_input_grad(dy.view()).unwrap();
            let carry: f64 = 1.0 - 1.0 / (1.0 + f64::exp(-gate_bias));
            let expected = carry.powi(50);
            assert!(expected > bound_low && expected < bound_high, "{expected}");
            assert!(
                dx.iter().all(|&g| (g - expected).abs() < 1e-12 * expected.max(1.0)),
                "{dx} vs {expected}"
            );
        }
    }
}
