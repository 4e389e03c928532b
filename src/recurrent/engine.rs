//! The machinery shared by [`super::Rnn`], [`super::Lstm`] and [`super::Gru`]: parameters in
//! PyTorch's layout, the per-step caches, the sequence loop in forward, backpropagation through
//! time (full or truncated) in backward, and input validation.
//!
//! The cells differ only in their elementwise step (in `rnn.rs`, `lstm.rs`, `gru.rs`); every
//! matrix product is here, batched as far as the recurrence allows:
//! - forward: the input projection `X W_ihᵀ + b` of **all** time steps is one GEMM
//!   `(T·B × I)·(I × G·H)`, then one GEMM per step `h_{t−1} W_hhᵀ` for all gates at once;
//! - backward: one GEMM per step for dL/dh_{t−1}, then `dW_ih`, `dW_hh` and dL/dX are one GEMM
//!   each over all steps.
//!
//! Buffers are kept between calls and only resized when (T, batch) changes.

use std::sync::{Mutex, OnceLock, PoisonError};

use ndarray::{ArrayView2, ArrayView3, ArrayViewMut2, Axis, Ix1, Ix2};
use rand::RngCore;

use super::Nonlinearity;
use super::init::{RecurrentInit, RecurrentInits, pytorch_default};
use super::state::RecurrentState;
use super::step_rows::{self, BackwardRows, ForwardRows};
use crate::hooks::{Gate, GateFunction};
use crate::linalg::gemm;
use crate::param::{Param, ParamView, ParamViewMut};
use crate::vectorize::vectorized;
use crate::{Error, Float, Result};

/// Which cell a recurrent layer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CellKind {
    Rnn(Nonlinearity),
    Lstm,
    Gru,
}

const LSTM_GATES: [Gate; 4] = [
    Gate { name: "i", function: GateFunction::Sigmoid },
    Gate { name: "f", function: GateFunction::Sigmoid },
    Gate { name: "g", function: GateFunction::Tanh },
    Gate { name: "o", function: GateFunction::Sigmoid },
];
const GRU_GATES: [Gate; 3] = [
    Gate { name: "r", function: GateFunction::Sigmoid },
    Gate { name: "z", function: GateFunction::Sigmoid },
    Gate { name: "n", function: GateFunction::Tanh },
];
const TANH_STATE: [Gate; 1] = [Gate { name: "h", function: GateFunction::Tanh }];
const RELU_STATE: [Gate; 1] = [Gate { name: "h", function: GateFunction::Relu }];

impl CellKind {
    /// Number of gates G: the weights have G·hidden rows.
    pub(crate) fn gates(self) -> usize {
        match self {
            CellKind::Rnn(_) => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }

    /// PyTorch's class name.
    pub(crate) fn kind(self) -> &'static str {
        match self {
            CellKind::Rnn(_) => "RNN",
            CellKind::Lstm => "LSTM",
            CellKind::Gru => "GRU",
        }
    }

    pub(crate) fn has_cell_state(self) -> bool {
        self == CellKind::Lstm
    }

    pub(crate) fn gate_layout(self) -> &'static [Gate] {
        match self {
            CellKind::Rnn(Nonlinearity::Tanh) => &TANH_STATE,
            CellKind::Rnn(Nonlinearity::Relu) => &RELU_STATE,
            CellKind::Lstm => &LSTM_GATES,
            CellKind::Gru => &GRU_GATES,
        }
    }
}

/// Everything needed to build the parameters of a recurrent layer (checked by [`Engine::new`]).
#[derive(Debug, Clone)]
pub(crate) struct EngineConfig {
    pub cell: CellKind,
    pub input_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub bias: bool,
    pub recurrent_init: RecurrentInit,
    /// LSTM only: value of the forget-gate slice of `bias_ih` (that of `bias_hh` is zeroed).
    pub forget_bias: Option<f64>,
    /// Initializers of `weight_ih` and `weight_hh`, and gate biases by name.
    pub inits: RecurrentInits,
}

/// PyTorch's parameter names for stacked layer `layer`: `weight_ih_l{layer}`, `weight_hh_…`,
/// `bias_ih_…`, `bias_hh_…`. Interned, so that each name is allocated once per process.
fn parameter_names(layer: usize) -> [&'static str; 4] {
    static NAMES: OnceLock<Mutex<Vec<[&'static str; 4]>>> = OnceLock::new();
    let mut names = NAMES.get_or_init(Default::default).lock().unwrap_or_else(PoisonError::into_inner);
    while names.len() <= layer {
        let l = names.len();
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        names.push([
            leak(format!("weight_ih_l{l}")),
            leak(format!("weight_hh_l{l}")),
            leak(format!("bias_ih_l{l}")),
            leak(format!("bias_hh_l{l}")),
        ]);
    }
    names[layer]
}

/// The parameters of one stacked layer, in PyTorch's layout.
#[derive(Debug, Clone)]
struct LayerParams<F: Float> {
    /// `(G·H, in)`: gate k uses rows `k·H..(k+1)·H`.
    weight_ih: Param<F, Ix2>,
    /// `(G·H, H)`.
    weight_hh: Param<F, Ix2>,
    /// `(G·H)`.
    bias_ih: Option<Param<F, Ix1>>,
    /// `(G·H)`.
    bias_hh: Option<Param<F, Ix1>>,
    names: [&'static str; 4],
}

/// Per-layer buffers of one pass. Row blocks of B rows belong to one time step.
#[derive(Debug, Clone, Default)]
struct LayerCache<F: Float> {
    /// `(T·B, G·H)`: the input projection of every step; step t's block is overwritten by the
    /// activated gates of step t as the recurrence reaches it (for an RNN: pre-activations).
    gates: Vec<F>,
    /// `((T+1)·B, H)`: h₀ (the initial state) then h of every step.
    hidden: Vec<F>,
    /// LSTM: `((T+1)·B, H)`: c₀ then c of every step.
    cell: Vec<F>,
    /// LSTM: `(T·B, H)`: tanh(c_t).
    tanh_cell: Vec<F>,
    /// GRU: `(T·B, H)`: W_hn h_{t−1} + b_hn, the recurrent part the reset gate multiplies.
    recurrent_n: Vec<F>,
    /// `(T·B, G·H)`: dL/d(input-side pre-activations) of every step.
    grad_pre: Vec<F>,
    /// GRU: `(T·B, 3H)`: dL/d(recurrent projection `W_hh h + b_hh`); for RNN and LSTM it equals
    /// `grad_pre`.
    grad_rec: Vec<F>,
    /// `(T·B, H)`: dL/dh_t.
    grad_hidden: Vec<F>,
    /// LSTM: `(T·B, H)`: dL/dc_t.
    grad_cell: Vec<F>,
    /// `(T·B, in)`: dL/d(this layer's input).
    grad_input: Vec<F>,
    /// `(B, H)`: dL/dh₀ and (LSTM) dL/dc₀.
    grad_h0: Vec<F>,
    grad_c0: Vec<F>,
}

/// Per-step scratch of one pass, shared by the layers.
#[derive(Debug, Clone, Default)]
struct Scratch<F: Float> {
    /// `(G·H)`: the bias added to the input projection (`b_ih + b_hh`, or `b_ih` for the GRU).
    bias: Vec<F>,
    /// `(B, G·H)`: GRU's recurrent projection in forward.
    recurrent: Vec<F>,
    /// `(H, G·H)`: `W_hhᵀ` of the layer being run forward, copied once per pass. The matrix
    /// product of every step then reads the weights in the layout the GEMM kernels consume
    /// directly, instead of repacking `W_hh` T times.
    weight_hh_t: Vec<F>,
    /// `(B, G·H)`: one step's dL/d(pre-activations).
    step_pre: Vec<F>,
    /// `(B, G·H)`: GRU: one step's dL/d(recurrent projection).
    step_rec: Vec<F>,
    /// `(B, H)`: dL/dh of the step being processed, and of the step before it.
    dh: Vec<F>,
    dh_prev: Vec<F>,
    /// `(B, H)`: LSTM: dL/dc carried to the step before.
    dc: Vec<F>,
}

/// The shared recurrent machinery. See the module documentation.
///
/// Its forward and backward passes run as kernels ([`crate::kernels`]): the whole recursion,
/// with its matrix products and cell steps, is compiled inside gradflow.
#[derive(Debug, Clone)]
pub struct Engine<F: Float> {
    cell: CellKind,
    input_size: usize,
    hidden_size: usize,
    params: Vec<LayerParams<F>>,
    caches: Vec<LayerCache<F>>,
    scratch: Scratch<F>,
    /// `(T·B, I)`: a copy of the last input (backward needs it).
    input: Vec<F>,
    /// `(T·B, H)`: a copy of the gradient arriving at the top layer's outputs.
    grad_top: Vec<F>,
    /// Truncated BPTT through stacked layers: `(k·B, H)`, the gradient one window sends from a
    /// layer to the one below it (read by that layer, written by this one).
    window_in: Vec<F>,
    window_out: Vec<F>,
    /// (T, B) of the last forward pass.
    shape: Option<(usize, usize)>,
    backward_done: bool,
    /// Whether the last backward pass computed dL/d(input).
    input_grad_done: bool,
    final_state: RecurrentState<F>,
    grad_initial: RecurrentState<F>,
}

fn resize<F: Float>(buffer: &mut Vec<F>, len: usize) {
    buffer.resize(len, F::zero());
}

fn view<F>(data: &[F], rows: usize, cols: usize) -> ArrayView2<'_, F> {
    ArrayView2::from_shape((rows, cols), &data[..rows * cols]).expect("buffers are sized by the engine")
}

fn view_mut<F>(data: &mut [F], rows: usize, cols: usize) -> ArrayViewMut2<'_, F> {
    ArrayViewMut2::from_shape((rows, cols), &mut data[..rows * cols])
        .expect("buffers are sized by the engine")
}

#[inline(always)]
fn add_into<F: Float>(dst: &mut [F], src: &[F]) {
    vectorized(
        #[inline(always)]
        || dst.iter_mut().zip(src).for_each(|(d, &s)| *d += s),
    )
}

/// `sums = Σ_rows grad`, for a `(rows, sums.len())` gradient.
fn column_sums<F: Float>(sums: &mut [F], grad: &[F]) {
    sums.fill(F::zero());
    F::add_column_sums(sums, grad);
}

/// `bias.grad += sums`.
fn add_to_grad<F: Float>(bias: &mut Param<F, Ix1>, sums: &[F]) {
    add_into(bias.grad.as_slice_mut().expect("parameters are standard layout"), sums);
}

/// A drawn parameter converted to `F` (allocated fallibly), refused when a value is not finite
/// in `F`.
fn checked_param<F: Float, D: ndarray::Dimension>(
    values: &ndarray::Array<f64, D>,
    kind: &str,
    field: &'static str,
) -> Result<Param<F, D>> {
    let converted = crate::init::try_from_f64::<F, _>(values, kind, field)?;
    crate::check_finite(kind, field, converted.iter())?;
    Param::try_new(converted, kind, field)
}

impl<F: Float> Engine<F> {
    /// Validates the configuration and draws the parameters.
    pub(crate) fn new(config: EngineConfig, rng: &mut dyn RngCore) -> Result<Self> {
        let kind = config.cell.kind();
        for (field, value) in [
            ("input_size", config.input_size),
            ("hidden_size", config.hidden_size),
            ("num_layers", config.num_layers),
        ] {
            if value == 0 {
                return Err(Error::config(kind, field, "must be at least 1, got 0"));
            }
        }
        config.recurrent_init.validate(kind)?;
        let gate_names: Vec<&str> = config.cell.gate_layout().iter().map(|g| g.name).collect();
        config.inits.validate(kind, &gate_names, config.bias, &config.recurrent_init)?;
        if let Some(value) = config.forget_bias {
            if config.cell != CellKind::Lstm {
                return Err(Error::config(kind, "forget_bias", "only an LSTM has a forget gate"));
            }
            if !config.bias {
                return Err(Error::config(kind, "forget_bias", "needs bias = true (the layer has no bias)"));
            }
            if !value.is_finite() {
                return Err(Error::config(kind, "forget_bias", format!("must be finite, got {value}")));
            }
        }
        let h = config.hidden_size;
        // G·hidden rows: an overflow (an LSTM of hidden size 2⁶²) or a tensor over the limit is
        // refused before anything is drawn.
        let gh = crate::alloc::mul(kind, "hidden_size", config.cell.gates(), h)?;
        crate::alloc::check_len(kind, "weight_ih_l0", &[gh, config.input_size])?;
        crate::alloc::check_len(kind, "weight_hh_l0", &[gh, h])?;
        let per_layer =
            [gh * config.input_size.max(h), gh * h, 2 * gh].iter().try_fold(0usize, |a, &b| a.checked_add(b));
        let total = per_layer.and_then(|p| p.checked_mul(config.num_layers));
        if total.is_none_or(|t| t > crate::limits::MAX_MODEL_PARAMETERS) {
            return Err(Error::config(
                kind,
                "num_layers",
                format!(
                    "{} layers of hidden size {h} exceed the limit of {} parameters \
                     (gradflow::limits::MAX_MODEL_PARAMETERS)",
                    config.num_layers,
                    crate::limits::MAX_MODEL_PARAMETERS
                ),
            ));
        }
        // PyTorch draws every parameter from the same U(±1/√H), layer by layer, in this order.
        let mut drawn = Vec::with_capacity(config.num_layers);
        for layer in 0..config.num_layers {
            let in_size = if layer == 0 { config.input_size } else { h };
            let w_ih = pytorch_default((gh, in_size), h, rng);
            let w_hh = pytorch_default((gh, h), h, rng);
            let biases = config.bias.then(|| {
                let b_ih = pytorch_default((1, gh), h, rng).remove_axis(Axis(0));
                let b_hh = pytorch_default((1, gh), h, rng).remove_axis(Axis(0));
                (b_ih, b_hh)
            });
            drawn.push((w_ih, w_hh, biases));
        }
        // Then the options, so that the defaults do not depend on them (same seed, same W_ih).
        let mut params = Vec::with_capacity(config.num_layers);
        for (layer, (mut w_ih, mut w_hh, mut biases)) in drawn.into_iter().enumerate() {
            let (b_ih, b_hh) = match &mut biases {
                Some((b_ih, b_hh)) => (Some(b_ih), Some(b_hh)),
                None => (None, None),
            };
            config.recurrent_init.apply(&mut w_hh, [b_ih, b_hh], rng);
            if let (Some(value), Some((b_ih, b_hh))) = (config.forget_bias, &mut biases) {
                // The forget gate is the second block (i, f, g, o); the sum b_if + b_hf = value.
                b_ih.slice_mut(ndarray::s![h..2 * h]).fill(value);
                b_hh.slice_mut(ndarray::s![h..2 * h]).fill(0.0);
            }
            let pair = biases.as_mut().map(|(b_ih, b_hh)| (b_ih, b_hh));
            config.inits.apply(kind, &gate_names, (&mut w_ih, &mut w_hh), pair, rng)?;
            // In the model's type: a forget bias or an identity scale of 1e39 is finite in f64
            // but infinite in f32.
            let (bias_ih, bias_hh) = match biases {
                Some((b_ih, b_hh)) => (
                    Some(checked_param(&b_ih, kind, "bias_ih")?),
                    Some(checked_param(&b_hh, kind, "bias_hh")?),
                ),
                None => (None, None),
            };
            params.push(LayerParams {
                weight_ih: checked_param(&w_ih, kind, "weight_ih")?,
                weight_hh: checked_param(&w_hh, kind, "weight_hh")?,
                bias_ih,
                bias_hh,
                names: parameter_names(layer),
            });
        }
        let with_cell = config.cell.has_cell_state();
        Ok(Engine {
            cell: config.cell,
            input_size: config.input_size,
            hidden_size: h,
            caches: vec![LayerCache::default(); config.num_layers],
            params,
            scratch: Scratch::default(),
            input: Vec::new(),
            grad_top: Vec::new(),
            window_in: Vec::new(),
            window_out: Vec::new(),
            shape: None,
            backward_done: false,
            input_grad_done: false,
            final_state: RecurrentState::zeros(config.num_layers, 0, h, with_cell),
            grad_initial: RecurrentState::zeros(config.num_layers, 0, h, with_cell),
        })
    }

    pub(crate) fn cell(&self) -> CellKind {
        self.cell
    }

    pub(crate) fn input_size(&self) -> usize {
        self.input_size
    }

    pub(crate) fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    pub(crate) fn num_layers(&self) -> usize {
        self.params.len()
    }

    /// E.g. `"LSTM(3→4)"`, `"RNN(3→4, nonlinearity=relu, num_layers=2)"`.
    pub(crate) fn describe(&self) -> String {
        let mut extra = String::new();
        if self.cell == CellKind::Rnn(Nonlinearity::Relu) {
            extra.push_str(", nonlinearity=relu");
        }
        if self.num_layers() > 1 {
            extra.push_str(&format!(", num_layers={}", self.num_layers()));
        }
        if self.params[0].bias_ih.is_none() {
            extra.push_str(", bias=false");
        }
        format!("{}({}→{}{extra})", self.cell.kind(), self.input_size, self.hidden_size)
    }

    fn check_state(&self, state: &RecurrentState<F>, batch: usize, what: [&'static str; 2]) -> Result<()> {
        let shape = (self.num_layers(), batch, self.hidden_size);
        let expected = || format!("({}, {batch}, {})", shape.0, shape.2);
        if state.hidden.dim() != shape {
            return Err(Error::shape(self.describe(), what[0], expected(), state.hidden.shape()));
        }
        match (&state.cell, self.cell.has_cell_state()) {
            (Some(c), true) if c.dim() != shape => {
                Err(Error::shape(self.describe(), what[1], expected(), c.shape()))
            }
            (None, true) => Err(Error::ShapeMismatch {
                layer: self.describe(),
                what: what[1],
                expected: expected(),
                actual: "none (an LSTM needs a cell state)".into(),
            }),
            (Some(c), false) => Err(Error::shape(
                self.describe(),
                what[1],
                format!("none ({} has no cell state)", self.cell.kind()),
                c.shape(),
            )),
            _ => Ok(()),
        }
    }

    /// Runs the layer over `input` `(T, B, I)` from `initial` (zero when `None`).
    pub(crate) fn forward(
        &mut self,
        input: ArrayView3<'_, F>,
        initial: Option<&RecurrentState<F>>,
    ) -> Result<()> {
        F::recurrent_forward(self, input, initial)
    }

    /// Backpropagates through time; see [`super::Recurrent::backward_sequence`]. Without
    /// `input_grad`, dL/d(input) is not computed (one GEMM less) and `grad_input` is `None`.
    pub(crate) fn backward(
        &mut self,
        grad_outputs: ArrayView3<'_, F>,
        grad_final: Option<&RecurrentState<F>>,
        truncate: Option<usize>,
        input_grad: bool,
    ) -> Result<()> {
        F::recurrent_backward(self, grad_outputs, grad_final, truncate, input_grad)
    }

    /// [`Engine::forward`]'s kernel.
    fn forward_pass(&mut self, input: ArrayView3<'_, F>, initial: Option<&RecurrentState<F>>) -> Result<()> {
        // A failed pass leaves nothing behind for backward to use.
        self.shape = None;
        self.backward_done = false;
        let (t_len, batch, features) = input.dim();
        if t_len == 0 || batch == 0 {
            let what = if t_len == 0 { "input (empty sequence)" } else { "input (empty batch)" };
            return Err(Error::shape(
                self.describe(),
                what,
                format!("(time ≥ 1, batch ≥ 1, {})", self.input_size),
                input.shape(),
            ));
        }
        if features != self.input_size {
            return Err(Error::shape(
                self.describe(),
                "input",
                format!("(time, batch, {})", self.input_size),
                input.shape(),
            ));
        }
        if let Some(state) = initial {
            self.check_state(state, batch, ["initial_state.hidden", "initial_state.cell"])?;
        }
        let (h, gh) = (self.hidden_size, self.cell.gates() * self.hidden_size);
        resize(&mut self.input, t_len * batch * features);
        for (dst, &src) in self.input.iter_mut().zip(input.iter()) {
            *dst = src;
        }
        resize(&mut self.scratch.recurrent, batch * gh);
        resize(&mut self.scratch.bias, gh);
        // Split across threads, each step is joined before the next: the recursion runs as a
        // parallel region, in which the other threads wait for the halves awake.
        let parts = step_rows::parts_for(batch, batch * h * gh);
        step_rows::in_region(parts, || {
            for l in 0..self.num_layers() {
                let (below, rest) = self.caches.split_at_mut(l);
                let cache = &mut rest[0];
                let (x, in_size): (&[F], usize) = if l == 0 {
                    (&self.input, self.input_size)
                } else {
                    (&below[l - 1].hidden[batch * h..], h)
                };
                cache.prepare(self.cell, t_len, batch, h, in_size);
                let h0 = initial.map(|s| s.hidden.index_axis(Axis(0), l));
                let c0 = initial.and_then(|s| s.cell.as_ref()).map(|c| c.index_axis(Axis(0), l));
                forward_layer(
                    self.cell,
                    &self.params[l],
                    cache,
                    &mut self.scratch,
                    Step { x, in_size, t_len, batch, hidden: h, parts },
                    h0,
                    c0,
                );
            }
        });
        let with_cell = self.cell.has_cell_state();
        self.final_state.ensure((self.num_layers(), batch, h), with_cell);
        let last = t_len * batch * h..(t_len + 1) * batch * h;
        for (l, cache) in self.caches.iter().enumerate() {
            let mut dst = self.final_state.hidden.index_axis_mut(Axis(0), l);
            dst.assign(&view(&cache.hidden[last.clone()], batch, h));
            if let Some(c) = &mut self.final_state.cell {
                c.index_axis_mut(Axis(0), l).assign(&view(&cache.cell[last.clone()], batch, h));
            }
        }
        self.shape = Some((t_len, batch));
        Ok(())
    }

    /// [`Engine::backward`]'s kernel.
    fn backward_pass(
        &mut self,
        grad_outputs: ArrayView3<'_, F>,
        grad_final: Option<&RecurrentState<F>>,
        truncate: Option<usize>,
        input_grad: bool,
    ) -> Result<()> {
        let Some((t_len, batch)) = self.shape else {
            return Err(Error::BackwardBeforeForward { layer: self.describe() });
        };
        let h = self.hidden_size;
        if grad_outputs.dim() != (t_len, batch, h) {
            return Err(Error::shape(
                self.describe(),
                "grad_outputs",
                format!("({t_len}, {batch}, {h}) as the outputs of the last forward pass"),
                grad_outputs.shape(),
            ));
        }
        if let Some(state) = grad_final {
            self.check_state(state, batch, ["grad_final_state.hidden", "grad_final_state.cell"])?;
        }
        if truncate == Some(0) {
            return Err(Error::config(self.describe(), "truncate", "must be at least 1 time step, got 0"));
        }
        self.backward_done = false;
        self.input_grad_done = false;
        // k ≥ T cuts nothing: run the full recursion (bit-identical to truncate = None).
        let window = truncate.filter(|&k| k < t_len);
        resize(&mut self.grad_top, t_len * batch * h);
        for (dst, &src) in self.grad_top.iter_mut().zip(grad_outputs.iter()) {
            *dst = src;
        }
        let gh = self.cell.gates() * h;
        let s = &mut self.scratch;
        for buffer in [&mut s.step_pre, &mut s.step_rec] {
            resize(buffer, batch * gh);
        }
        for buffer in [&mut s.dh, &mut s.dh_prev, &mut s.dc] {
            resize(buffer, batch * h);
        }
        let accumulate = window.is_some();
        for cache in &mut self.caches {
            cache.reset_grads(accumulate);
        }
        let finals = |l: usize| -> [Option<ArrayView2<'_, F>>; 2] {
            [
                grad_final.map(|s| s.hidden.index_axis(Axis(0), l)),
                grad_final.and_then(|s| s.cell.as_ref()).map(|c| c.index_axis(Axis(0), l)),
            ]
        };
        let top = self.num_layers() - 1;
        let input_size = self.input_size;
        let sizes =
            |l: usize| Sizes { t_len, batch, hidden: h, in_size: if l == 0 { input_size } else { h } };
        let parts = step_rows::parts_for(batch, batch * gh * h);
        step_rows::in_region(parts, || {
            match window {
                // Full BPTT: layer by layer from the top, each in one pass from the last step to the
                // first, injecting every step's gradient (from the caller, or from the layer above).
                None => {
                    for l in (0..=top).rev() {
                        let (lower, upper) = self.caches.split_at_mut(l + 1);
                        let injected: &[F] = if l == top { &self.grad_top } else { &upper[0].grad_input };
                        let injection = Injection { data: injected, first_step: 0, every_step: true };
                        let window = Window { end: t_len - 1, start: 0 };
                        let cache = &mut lower[l];
                        backprop_window(
                            self.cell,
                            &self.params[l],
                            cache,
                            &mut self.scratch,
                            sizes(l),
                            injection,
                            &finals(l),
                            window,
                            None,
                            false,
                            parts,
                        );
                        self.finish_layer(l, batch, l > 0 || input_grad);
                    }
                }
                // Truncated: the gradient of the top layer's output at step `end` (and of the final
                // states, at T−1) flows back through every layer over steps start..=end only, as if
                // the states of all layers were detached before `start`.
                Some(k) => {
                    resize(&mut self.window_in, k * batch * h);
                    resize(&mut self.window_out, k * batch * h);
                    let any_final = grad_final.is_some_and(|g| {
                        g.hidden.iter().chain(g.cell.iter().flatten()).any(|v| !v.is_zero())
                    });
                    for end in (0..t_len).rev() {
                        let injected = &self.grad_top[end * batch * h..(end + 1) * batch * h];
                        if !(end == t_len - 1 && any_final) && injected.iter().all(|v| v.is_zero()) {
                            continue;
                        }
                        let window = Window { end, start: (end + 1).saturating_sub(k) };
                        for l in (0..=top).rev() {
                            let injection = if l == top {
                                Injection { data: &self.grad_top, first_step: 0, every_step: false }
                            } else {
                                Injection {
                                    data: &self.window_in,
                                    first_step: window.start,
                                    every_step: true,
                                }
                            };
                            // The gradient this window sends to the layer below, step by step.
                            let below = (l > 0).then_some(&mut self.window_out[..]);
                            let cache = &mut self.caches[l];
                            backprop_window(
                                self.cell,
                                &self.params[l],
                                cache,
                                &mut self.scratch,
                                sizes(l),
                                injection,
                                &finals(l),
                                window,
                                below,
                                true,
                                parts,
                            );
                            std::mem::swap(&mut self.window_in, &mut self.window_out);
                        }
                    }
                    for l in 0..=top {
                        self.finish_layer(l, batch, l == 0 && input_grad);
                    }
                }
            }
        });
        let with_cell = self.cell.has_cell_state();
        self.grad_initial.ensure((self.num_layers(), batch, h), with_cell);
        for (l, cache) in self.caches.iter().enumerate() {
            self.grad_initial.hidden.index_axis_mut(Axis(0), l).assign(&view(&cache.grad_h0, batch, h));
            if let Some(c) = &mut self.grad_initial.cell {
                c.index_axis_mut(Axis(0), l).assign(&view(&cache.grad_c0, batch, h));
            }
        }
        self.backward_done = true;
        self.input_grad_done = input_grad;
        Ok(())
    }

    /// After the recursion: the gradients of `W_ih`, `W_hh` and the biases over all steps (one
    /// GEMM each), and, when `input_grad` is set, dL/d(input) of layer `l`.
    fn finish_layer(&mut self, l: usize, batch: usize, input_grad: bool) {
        let (lower, _) = self.caches.split_at_mut(l + 1);
        let (below, this) = lower.split_at_mut(l);
        let h = self.hidden_size;
        let (x, in_size): (&[F], usize) =
            if l == 0 { (&self.input, self.input_size) } else { (&below[l - 1].hidden[batch * h..], h) };
        let (t_len, _) = self.shape.expect("backward runs after forward");
        let sizes = Sizes { t_len, batch, hidden: h, in_size };
        let sums = &mut self.scratch.bias;
        finish_layer(self.cell, &mut self.params[l], &mut this[0], x, sizes, sums, input_grad);
    }

    fn forward_shape(&self) -> Option<(usize, usize)> {
        self.shape
    }

    fn backward_shape(&self) -> Option<(usize, usize)> {
        self.shape.filter(|_| self.backward_done)
    }

    fn sequence<'a>(&self, data: &'a [F], shape: (usize, usize), width: usize) -> ArrayView3<'a, F> {
        let (t, b) = shape;
        ArrayView3::from_shape((t, b, width), &data[..t * b * width])
            .expect("buffers are sized by the engine")
    }

    pub(crate) fn outputs(&self) -> Option<ArrayView3<'_, F>> {
        self.hidden_states(self.num_layers() - 1)
    }

    pub(crate) fn final_state(&self) -> Option<&RecurrentState<F>> {
        self.forward_shape().map(|_| &self.final_state)
    }

    pub(crate) fn grad_input(&self) -> Option<ArrayView3<'_, F>> {
        let shape = self.backward_shape().filter(|_| self.input_grad_done)?;
        Some(self.sequence(&self.caches[0].grad_input, shape, self.input_size))
    }

    pub(crate) fn grad_initial_state(&self) -> Option<&RecurrentState<F>> {
        self.backward_shape().map(|_| &self.grad_initial)
    }

    pub(crate) fn hidden_states(&self, layer: usize) -> Option<ArrayView3<'_, F>> {
        let shape = self.forward_shape()?;
        let cache = self.caches.get(layer)?;
        Some(self.sequence(&cache.hidden[shape.1 * self.hidden_size..], shape, self.hidden_size))
    }

    pub(crate) fn cell_states(&self, layer: usize) -> Option<ArrayView3<'_, F>> {
        let shape = self.forward_shape().filter(|_| self.cell.has_cell_state())?;
        let cache = self.caches.get(layer)?;
        Some(self.sequence(&cache.cell[shape.1 * self.hidden_size..], shape, self.hidden_size))
    }

    pub(crate) fn gate_activations(&self, layer: usize) -> Option<ArrayView3<'_, F>> {
        if let CellKind::Rnn(_) = self.cell {
            return self.hidden_states(layer);
        }
        let shape = self.forward_shape()?;
        let cache = self.caches.get(layer)?;
        Some(self.sequence(&cache.gates, shape, self.cell.gates() * self.hidden_size))
    }

    pub(crate) fn grad_hidden(&self, layer: usize) -> Option<ArrayView3<'_, F>> {
        let shape = self.backward_shape()?;
        Some(self.sequence(&self.caches.get(layer)?.grad_hidden, shape, self.hidden_size))
    }

    pub(crate) fn grad_gate_preactivations(&self, layer: usize) -> Option<ArrayView3<'_, F>> {
        let shape = self.backward_shape()?;
        let gh = self.cell.gates() * self.hidden_size;
        Some(self.sequence(&self.caches.get(layer)?.grad_pre, shape, gh))
    }

    pub(crate) fn grad_cell(&self, layer: usize) -> Option<ArrayView3<'_, F>> {
        let shape = self.backward_shape().filter(|_| self.cell.has_cell_state())?;
        Some(self.sequence(&self.caches.get(layer)?.grad_cell, shape, self.hidden_size))
    }

    pub(crate) fn visit_parameters<'a>(&'a self, visitor: &mut dyn FnMut(ParamView<'a, F>)) {
        for p in &self.params {
            visitor(p.weight_ih.view(p.names[0]));
            visitor(p.weight_hh.view(p.names[1]));
            if let Some(b) = &p.bias_ih {
                visitor(b.view(p.names[2]));
            }
            if let Some(b) = &p.bias_hh {
                visitor(b.view(p.names[3]));
            }
        }
    }

    pub(crate) fn visit_parameters_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(ParamViewMut<'a, F>)) {
        for p in &mut self.params {
            visitor(p.weight_ih.view_mut(p.names[0]));
            visitor(p.weight_hh.view_mut(p.names[1]));
            if let Some(b) = &mut p.bias_ih {
                visitor(b.view_mut(p.names[2]));
            }
            if let Some(b) = &mut p.bias_hh {
                visitor(b.view_mut(p.names[3]));
            }
        }
    }
}

/// [`Engine::forward`]'s whole pass. A kernel ([`crate::kernels`]).
pub(crate) fn forward<F: Float>(
    engine: &mut Engine<F>,
    input: ArrayView3<'_, F>,
    initial: Option<&RecurrentState<F>>,
) -> Result<()> {
    engine.forward_pass(input, initial)
}

/// [`Engine::backward`]'s whole pass. A kernel ([`crate::kernels`]).
pub(crate) fn backward<F: Float>(
    engine: &mut Engine<F>,
    grad_outputs: ArrayView3<'_, F>,
    grad_final: Option<&RecurrentState<F>>,
    truncate: Option<usize>,
    input_grad: bool,
) -> Result<()> {
    engine.backward_pass(grad_outputs, grad_final, truncate, input_grad)
}

impl<F: Float> LayerCache<F> {
    /// Sizes every buffer for T steps of B rows (no reallocation when the sizes repeat).
    fn prepare(&mut self, cell: CellKind, t_len: usize, batch: usize, h: usize, in_size: usize) {
        let rows = t_len * batch;
        let gh = cell.gates() * h;
        resize(&mut self.gates, rows * gh);
        resize(&mut self.hidden, (rows + batch) * h);
        resize(&mut self.grad_pre, rows * gh);
        resize(&mut self.grad_hidden, rows * h);
        resize(&mut self.grad_input, rows * in_size);
        resize(&mut self.grad_h0, batch * h);
        let lstm = if cell == CellKind::Lstm { 1 } else { 0 };
        let gru = if cell == CellKind::Gru { 1 } else { 0 };
        resize(&mut self.cell, lstm * (rows + batch) * h);
        resize(&mut self.tanh_cell, lstm * rows * h);
        resize(&mut self.grad_cell, lstm * rows * h);
        resize(&mut self.grad_c0, lstm * batch * h);
        resize(&mut self.recurrent_n, gru * rows * h);
        resize(&mut self.grad_rec, gru * rows * gh);
    }
}

/// The sizes of one layer's pass and its input `x`, `(T·B, in_size)`.
#[derive(Clone, Copy)]
struct Step<'a, F> {
    x: &'a [F],
    in_size: usize,
    t_len: usize,
    batch: usize,
    hidden: usize,
    /// Row groups each step is split into across threads ([`step_rows::parts_for`]).
    parts: usize,
}

fn forward_layer<F: Float>(
    cell: CellKind,
    p: &LayerParams<F>,
    c: &mut LayerCache<F>,
    s: &mut Scratch<F>,
    step: Step<'_, F>,
    h0: Option<ArrayView2<'_, F>>,
    c0: Option<ArrayView2<'_, F>>,
) {
    let Step { x, in_size, t_len, batch, hidden: h, parts } = step;
    let (gh, bh, rows) = (cell.gates() * h, batch * h, t_len * batch);
    // Input projection of all steps at once: X W_ihᵀ + b_ih (+ b_hh, except for the GRU, whose
    // reset gate multiplies the recurrent part including its bias).
    {
        let bias = &mut s.bias[..gh];
        let has_bias = match (&p.bias_ih, &p.bias_hh, cell) {
            (Some(b_ih), _, CellKind::Gru) => {
                bias.iter_mut().zip(b_ih.value.iter()).for_each(|(d, &a)| *d = a);
                true
            }
            (Some(b_ih), Some(b_hh), _) => {
                let sums = bias.iter_mut().zip(b_ih.value.iter().zip(b_hh.value.iter()));
                sums.for_each(|(d, (&a, &b))| *d = a + b);
                true
            }
            _ => false,
        };
        let beta = if has_bias {
            for row in c.gates.chunks_exact_mut(gh) {
                row.copy_from_slice(bias);
            }
            F::one()
        } else {
            F::zero()
        };
        gemm(
            F::one(),
            view(x, rows, in_size),
            false,
            p.weight_ih.value.view(),
            true,
            beta,
            view_mut(&mut c.gates, rows, gh),
        );
    }
    match h0 {
        Some(h0) => c.hidden[..bh].iter_mut().zip(h0.iter()).for_each(|(d, &v)| *d = v),
        None => c.hidden[..bh].fill(F::zero()),
    }
    if cell == CellKind::Lstm {
        match c0 {
            Some(c0) => c.cell[..bh].iter_mut().zip(c0.iter()).for_each(|(d, &v)| *d = v),
            None => c.cell[..bh].fill(F::zero()),
        }
    }
    resize(&mut s.weight_hh_t, h * gh);
    view_mut(&mut s.weight_hh_t, h, gh).assign(&p.weight_hh.value.t());
    let w_hh_t = view(&s.weight_hh_t, h, gh);
    let b_hh = match (&p.bias_hh, cell) {
        (Some(b), CellKind::Gru) => Some(b.value.as_slice().expect("parameters are standard layout")),
        _ => None,
    };
    let (lstm, gru) = (cell == CellKind::Lstm, cell == CellKind::Gru);
    for t in 0..t_len {
        let (before, after) = c.hidden.split_at_mut((t + 1) * bh);
        let (c_before, c_after) = c.cell.split_at_mut(if lstm { (t + 1) * bh } else { 0 });
        let rows = ForwardRows {
            rows: batch,
            h_prev: &before[t * bh..],
            h: &mut after[..bh],
            gates: &mut c.gates[t * batch * gh..(t + 1) * batch * gh],
            c_prev: if lstm { &c_before[t * bh..] } else { &[] },
            c: if lstm { &mut c_after[..bh] } else { &mut [] },
            tanh_c: if lstm { &mut c.tanh_cell[t * bh..(t + 1) * bh] } else { &mut [] },
            rec: if gru { &mut s.recurrent[..batch * gh] } else { &mut [] },
            recurrent_n: if gru { &mut c.recurrent_n[t * bh..(t + 1) * bh] } else { &mut [] },
            hidden: h,
            gate_width: gh,
        };
        step_rows::in_parts(rows, parts, &|r| step_rows::forward(cell, w_hh_t, b_hh, r));
    }
}

/// The sizes of one layer's backward pass.
#[derive(Clone, Copy)]
struct Sizes {
    t_len: usize,
    batch: usize,
    hidden: usize,
    in_size: usize,
}

/// Where the gradient arriving at a layer's outputs comes from: `data` holds `(steps, B, H)`
/// starting at step `first_step`; it is added at every step of the window (`every_step`) or
/// only at its last step.
#[derive(Clone, Copy)]
struct Injection<'a, F> {
    data: &'a [F],
    first_step: usize,
    every_step: bool,
}

/// The steps `start..=end` a backward recursion runs over, from `end` down.
#[derive(Clone, Copy)]
struct Window {
    end: usize,
    start: usize,
}

impl<F: Float> LayerCache<F> {
    /// Zeroes the gradients the recursion adds into. `grad_pre` and `grad_rec` are written
    /// once per step unless windows overlap (`accumulate`, truncated BPTT).
    fn reset_grads(&mut self, accumulate: bool) {
        if accumulate {
            self.grad_pre.fill(F::zero());
            self.grad_rec.fill(F::zero());
        }
        for buffer in [&mut self.grad_hidden, &mut self.grad_cell, &mut self.grad_h0, &mut self.grad_c0] {
            buffer.fill(F::zero());
        }
    }
}

/// The parameter gradients over all steps, one GEMM each, and, when `input_grad` is set,
/// dL/dX = dPre W_ih. `sums` is scratch of `G·H` values.
fn finish_layer<F: Float>(
    cell: CellKind,
    p: &mut LayerParams<F>,
    c: &mut LayerCache<F>,
    x: &[F],
    sizes: Sizes,
    sums: &mut [F],
    input_grad: bool,
) {
    let Sizes { t_len, batch, hidden: h, in_size } = sizes;
    let (gh, rows) = (cell.gates() * h, t_len * batch);
    let grad_pre = view(&c.grad_pre, rows, gh);
    gemm(F::one(), grad_pre, true, view(x, rows, in_size), false, F::one(), p.weight_ih.grad.view_mut());
    let grad_rec = if cell == CellKind::Gru { &c.grad_rec } else { &c.grad_pre };
    let h_prev = view(&c.hidden, rows, h); // h_{t−1} for every t: h₀ … h_{T−2}
    gemm(F::one(), view(grad_rec, rows, gh), true, h_prev, false, F::one(), p.weight_hh.grad.view_mut());
    let sums = &mut sums[..gh];
    if let Some(b) = &mut p.bias_ih {
        column_sums(sums, &c.grad_pre);
        add_to_grad(b, sums);
    }
    if let Some(b) = &mut p.bias_hh {
        // Both biases enter the same pre-activations except in the GRU, whose b_hn sits inside
        // the reset gate's product.
        if cell == CellKind::Gru || p.bias_ih.is_none() {
            column_sums(sums, grad_rec);
        }
        add_to_grad(b, sums);
    }
    if input_grad {
        let dx = view_mut(&mut c.grad_input, rows, in_size);
        gemm(F::one(), grad_pre, false, p.weight_ih.value.view(), false, F::zero(), dx);
    }
}

/// Backpropagates through steps `window.end` down to `window.start` of one layer, adding into
/// its caches' gradients (dL/d pre-activations, dL/dh_t, dL/dc_t, dL/dh₀, dL/dc₀). The gradient
/// of the final state enters at step T−1. Below `start > 0` nothing flows: that is truncation.
/// When `window_dx` is given, the gradient this window sends to the layer's input at each of
/// its steps is written there, `(steps, B, in)` from `start`. With `accumulate` each step's
/// dL/d(pre-activations) is added into `grad_pre` (windows overlap); without, it is written
/// there directly (every step is visited once).
#[allow(clippy::too_many_arguments)]
fn backprop_window<F: Float>(
    cell: CellKind,
    p: &LayerParams<F>,
    c: &mut LayerCache<F>,
    s: &mut Scratch<F>,
    sizes: Sizes,
    injection: Injection<'_, F>,
    grad_final: &[Option<ArrayView2<'_, F>>; 2],
    window: Window,
    mut window_dx: Option<&mut [F]>,
    accumulate: bool,
    parts: usize,
) {
    let Sizes { t_len, batch, hidden: h, in_size } = sizes;
    let Window { end, start } = window;
    let (gh, bh) = (cell.gates() * h, batch * h);
    s.dh.fill(F::zero());
    s.dc.fill(F::zero());
    if end == t_len - 1 {
        if let Some(g) = &grad_final[0] {
            s.dh.iter_mut().zip(g.iter()).for_each(|(d, &v)| *d += v);
        }
        if let Some(g) = &grad_final[1] {
            s.dc.iter_mut().zip(g.iter()).for_each(|(d, &v)| *d += v);
        }
    }
    let w_hh = p.weight_hh.value.view();
    for t in (start..=end).rev() {
        if injection.every_step || t == end {
            let k = t - injection.first_step;
            add_into(&mut s.dh, &injection.data[k * bh..(k + 1) * bh]);
        }
        add_into(&mut c.grad_hidden[t * bh..(t + 1) * bh], &s.dh);
        let step_grad = t * batch * gh..(t + 1) * batch * gh;
        let step = t * bh..(t + 1) * bh;
        // Truncated: nothing flows to the step before the window.
        let propagate = !(t == start && start > 0);
        {
            // Where this step's dL/d(pre-activations) (and the GRU's dL/d(recurrent
            // projection)) go: straight into the layer's gradients unless windows overlap.
            let (d_pre, d_rec): (&mut [F], &mut [F]) = match (accumulate, cell) {
                (true, _) => (&mut s.step_pre, &mut s.step_rec),
                (false, CellKind::Gru) => {
                    (&mut c.grad_pre[step_grad.clone()], &mut c.grad_rec[step_grad.clone()])
                }
                (false, _) => (&mut c.grad_pre[step_grad.clone()], &mut s.step_rec),
            };
            let (lstm, gru) = (cell == CellKind::Lstm, cell == CellKind::Gru);
            let rows = BackwardRows {
                rows: batch,
                dh: &s.dh,
                gates: &c.gates[step_grad.clone()],
                h: match cell {
                    CellKind::Rnn(_) => &c.hidden[(t + 1) * bh..(t + 2) * bh],
                    CellKind::Gru => &c.hidden[step.clone()],
                    CellKind::Lstm => &[],
                },
                c_prev: if lstm { &c.cell[step.clone()] } else { &[] },
                tanh_c: if lstm { &c.tanh_cell[step.clone()] } else { &[] },
                dc: if lstm { &mut s.dc } else { &mut [] },
                grad_cell: if lstm { &mut c.grad_cell[step.clone()] } else { &mut [] },
                recurrent_n: if gru { &c.recurrent_n[step] } else { &[] },
                d_pre,
                d_rec,
                dh_prev: &mut s.dh_prev,
                hidden: h,
                gate_width: gh,
            };
            step_rows::in_parts(rows, parts, &|r| step_rows::backward(cell, w_hh, propagate, r));
        }
        if accumulate {
            add_into(&mut c.grad_pre[step_grad.clone()], &s.step_pre);
            if cell == CellKind::Gru {
                add_into(&mut c.grad_rec[step_grad.clone()], &s.step_rec);
            }
        }
        if let Some(dx) = window_dx.as_deref_mut() {
            let d_pre = if accumulate { &s.step_pre[..] } else { &c.grad_pre[step_grad] };
            let rows = (t - start) * batch * in_size..(t - start + 1) * batch * in_size;
            let dx = view_mut(&mut dx[rows], batch, in_size);
            gemm(F::one(), view(d_pre, batch, gh), false, p.weight_ih.value.view(), false, F::zero(), dx);
        }
        if !propagate {
            break;
        }
        if t == 0 {
            add_into(&mut c.grad_h0, &s.dh_prev);
            if cell == CellKind::Lstm {
                add_into(&mut c.grad_c0, &s.dc);
            }
        } else {
            std::mem::swap(&mut s.dh, &mut s.dh_prev);
        }
    }
}
