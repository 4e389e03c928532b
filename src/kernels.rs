//! The hot loops, compiled inside gradflow for `f32` and `f64`.
//!
//! # Why
//! Generic code is compiled in the crate that instantiates it, at *that* crate's optimization
//! level. gradflow is generic over [`Float`](crate::Float), so without this module every loop of
//! a training step — activations, optimizer updates, normalization, statistics — would be
//! compiled inside the user's crate, and in the user's debug build (opt-level 0) run 10–60×
//! slower than in release, whatever profile settings gradflow asks for its own dependencies.
//!
//! So every loop whose cost grows with the size of a tensor is a method of [`Kernels`], a
//! supertrait of [`Float`](crate::Float) implemented here for `f32` and `f64`. These
//! implementations are ordinary non-generic functions: rustc compiles them once, in gradflow, at
//! the optimization level the user's profile gives gradflow (`[profile.dev.package."*"]
//! opt-level = 3`, as the README recommends), and the user's crate only calls them. The generic
//! code left in the user's crate orchestrates a few calls per layer, which costs next to
//! nothing even unoptimized.
//!
//! # Adding a kernel
//! Write the loop as a generic function over slices and scalars in the module it belongs to
//! (`pub(crate) fn name<F: Float>(…)`, its doc ending "A kernel ([`crate::kernels`])"), add one
//! line to the [`kernels!`] list below naming it, and call it as `F::name(…)` from generic
//! code. Argument types use `Self` for the float type; every method carries `where Self: Float`,
//! so they may name types that need it (`&dyn Activation<Self>`).
//! - Several scalars travel in a small settings struct declared `pub` in a private module (for
//!   example `optim::sgd::SgdRule`): the trait can name it, users cannot.
//! - ndarray arrays are taken as slices when contiguous; the caller keeps ndarray's own loop for
//!   strided arrays (a parameter replaced by a transposed array, a transposed input): a rare
//!   path that stays generic. Where an order-dependent sum is involved, the slice path is taken
//!   only when its order is the one ndarray would have used, so that results stay bit for bit
//!   the same.
//! - A routine whose loops are many and whose state is internal is one kernel as a whole, its
//!   arguments views or internal types: the matrix product ([`crate::linalg`]), a recurrent
//!   layer's forward and backward pass through time, the recorder's activation statistics.
//! - A loop that is not generic (over `usize` labels, parsing) needs no kernel: a non-generic
//!   function is compiled in gradflow. Mark it `#[inline(never)]` if it is small, since rustc
//!   may otherwise inline small functions into the calling crate.
//!
//! Kernels are `#[inline(never)]`: each one processes a whole tensor, so the call costs nothing,
//! and it keeps the user's crate from instantiating the body itself.
//!
//! What is left generic: per-layer orchestration (visiting layers and parameters, hooks, shape
//! checks), the strided fallbacks above, [`TensorStats::of`](crate::hooks::TensorStats::of)
//! over an arbitrary iterator, and the default loops of [`Activation`](crate::Activation) for
//! activations defined outside gradflow (the user's own code, compiled as the user compiles it).
//!
//! [`Float`](crate::Float) is sealed by this trait: it cannot be implemented outside gradflow.

use ndarray::{ArrayView1, ArrayView2, ArrayView3, ArrayViewD, ArrayViewMut2};

use crate::activation::{Activation, Elu, Gelu, LeakyRelu, Softplus};
use crate::hooks::{ActivationStats, GateFunction, TensorStats};
use crate::layers::highway::GateRows;
use crate::layers::layer_norm::Affine;
use crate::loss::cross_entropy::SoftmaxRule;
use crate::optim::adam::{AdamRule, Moments as AdamMoments};
use crate::optim::rmsprop::RmsPropRule;
use crate::optim::sgd::SgdRule;
use crate::recurrent::RecurrentState;
use crate::recurrent::engine::Engine;

/// Declares [`Kernels`] and implements it for `f32` and `f64` by calling the generic function
/// each entry names.
macro_rules! kernels {
    ($(
        $(#[$meta:meta])*
        fn $name:ident $(<$($lt:lifetime),+>)? ($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? => $imp:path;
    )*) => {
        /// The hot loops of gradflow, precompiled for `f32` and `f64` (see the [module
        /// documentation](self)). Not nameable outside the crate: it seals
        /// [`Float`](crate::Float).
        pub trait Kernels: Sized + 'static {
            $(
                $(#[$meta])*
                fn $name $(<$($lt),+>)? ($($arg: $ty),*) $(-> $ret)?
                where
                    Self: crate::Float;
            )*
        }

        impl Kernels for f32 {
            $(
                #[inline(never)]
                fn $name $(<$($lt),+>)? ($($arg: $ty),*) $(-> $ret)? {
                    $imp($($arg),*)
                }
            )*
        }

        impl Kernels for f64 {
            $(
                #[inline(never)]
                fn $name $(<$($lt),+>)? ($($arg: $ty),*) $(-> $ret)? {
                    $imp($($arg),*)
                }
            )*
        }
    };
}

kernels! {
    /// Sets every value to zero (shared between threads when long).
    fn fill_zero(values: &mut [Self]) => crate::vectorize::fill_zero;
    /// `sums[j] += Σᵢ matrix[i, j]` for a row-major matrix with `sums.len()` columns.
    fn add_column_sums(sums: &mut [Self], matrix: &[Self]) => crate::vectorize::add_column_sums;
    /// True when every value is finite.
    fn all_finite(values: &[Self]) -> bool => crate::float::all_finite;

    // Shared elementwise loops (src/elementwise.rs).
    fn scale_into(factor: Self, x: &[Self], out: &mut [Self]) => crate::elementwise::scale_into;
    fn scale_in_place(values: &mut [Self], factor: Self) => crate::elementwise::scale_in_place;
    fn clamp_in_place(values: &mut [Self], low: Self, high: Self) => crate::elementwise::clamp_in_place;
    fn dot(x: &[Self], y: &[Self]) -> Self => crate::elementwise::dot;
    fn sum_of_squares_f64(values: &[Self]) -> f64 => crate::elementwise::sum_of_squares_f64;
    fn convert_from_f64(values: &[f64], out: &mut [Self]) => crate::elementwise::convert_from_f64;
    fn from_bytes_scaled(
        bytes: &[u8],
        scale: Self,
        out: &mut [Self],
    ) => crate::elementwise::from_bytes_scaled;

    // Matrix products (src/linalg.rs): the whole product, threads and layout choices included.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        alpha: Self,
        a: ArrayView2<'_, Self>,
        transpose_a: bool,
        b: ArrayView2<'_, Self>,
        transpose_b: bool,
        beta: Self,
        c: ArrayViewMut2<'_, Self>,
    ) => crate::linalg::gemm_kernel;
    fn gemm_plus_row(
        a: ArrayView2<'_, Self>,
        transpose_a: bool,
        b: ArrayView2<'_, Self>,
        transpose_b: bool,
        row: ArrayView1<'_, Self>,
        c: ArrayViewMut2<'_, Self>,
    ) => crate::linalg::gemm_plus_row_kernel;

    // Activations: forward and backward over slices (src/activation/).
    fn sigmoid_forward(x: &[Self], y: &mut [Self]) => crate::activation::sigmoid::forward;
    fn sigmoid_backward(
        x: &[Self],
        y: &[Self],
        grad_y: &[Self],
        grad_x: &mut [Self],
    ) => crate::activation::sigmoid::backward;
    fn tanh_forward(x: &[Self], y: &mut [Self]) => crate::activation::tanh::forward;
    fn tanh_backward(
        x: &[Self],
        y: &[Self],
        grad_y: &[Self],
        grad_x: &mut [Self],
    ) => crate::activation::tanh::backward;
    fn relu_forward(x: &[Self], y: &mut [Self]) => crate::activation::relu::forward;
    fn relu_backward(
        x: &[Self],
        y: &[Self],
        grad_y: &[Self],
        grad_x: &mut [Self],
    ) => crate::activation::relu::backward;
    fn leaky_relu_forward(
        leaky_relu: &LeakyRelu,
        x: &[Self],
        y: &mut [Self],
    ) => crate::activation::leaky_relu::forward;
    fn leaky_relu_backward(
        leaky_relu: &LeakyRelu,
        x: &[Self],
        y: &[Self],
        grad_y: &[Self],
        grad_x: &mut [Self],
    ) => crate::activation::leaky_relu::backward;
    fn elu_forward(elu: &Elu, x: &[Self], y: &mut [Self]) => crate::activation::elu::forward;
    fn elu_backward(
        elu: &Elu,
        x: &[Self],
        y: &[Self],
        grad_y: &[Self],
        grad_x: &mut [Self],
    ) => crate::activation::elu::backward;
    fn selu_forward(x: &[Self], y: &mut [Self]) => crate::activation::selu::forward;
    fn selu_backward(
        x: &[Self],
        y: &[Self],
        grad_y: &[Self],
        grad_x: &mut [Self],
    ) => crate::activation::selu::backward;
    fn gelu_forward(gelu: &Gelu, x: &[Self], y: &mut [Self]) => crate::activation::gelu::forward;
    fn gelu_backward(
        gelu: &Gelu,
        x: &[Self],
        y: &[Self],
        grad_y: &[Self],
        grad_x: &mut [Self],
    ) => crate::activation::gelu::backward;
    fn silu_forward(x: &[Self], y: &mut [Self]) => crate::activation::silu::forward;
    fn silu_backward(
        x: &[Self],
        y: &[Self],
        grad_y: &[Self],
        grad_x: &mut [Self],
    ) => crate::activation::silu::backward;
    fn softsign_forward(x: &[Self], y: &mut [Self]) => crate::activation::softsign::forward;
    fn softsign_backward(
        x: &[Self],
        y: &[Self],
        grad_y: &[Self],
        grad_x: &mut [Self],
    ) => crate::activation::softsign::backward;
    fn softplus_forward(
        softplus: &Softplus,
        x: &[Self],
        y: &mut [Self],
    ) => crate::activation::softplus::forward;
    fn softplus_backward(
        softplus: &Softplus,
        x: &[Self],
        y: &[Self],
        grad_y: &[Self],
        grad_x: &mut [Self],
    ) => crate::activation::softplus::backward;

    // Optimizers (src/optim/): whether a step keeps a parameter and its state finite (computed
    // without writing), and the updates, each returning Σ(new − old)² when `observing`.
    fn sgd_update_is_finite(
        value: ArrayViewD<'_, Self>,
        grad: ArrayViewD<'_, Self>,
        buffer: Option<ArrayViewD<'_, Self>>,
        rule: &SgdRule<Self>,
    ) -> bool => crate::optim::sgd::update_is_finite;
    fn adam_update_is_finite(
        value_and_grad: (ArrayViewD<'_, Self>, ArrayViewD<'_, Self>),
        moments: AdamMoments<'_, Self>,
        rule: &AdamRule<Self>,
    ) -> bool => crate::optim::adam::update_is_finite;
    fn rmsprop_update_is_finite(
        value_and_grad: (ArrayViewD<'_, Self>, ArrayViewD<'_, Self>),
        averages: (ArrayViewD<'_, Self>, Option<ArrayViewD<'_, Self>>),
        momentum_buffer: Option<ArrayViewD<'_, Self>>,
        rule: &RmsPropRule<Self>,
    ) -> bool => crate::optim::rmsprop::update_is_finite;
    fn sgd_plain(
        value: &mut [Self],
        grad: &[Self],
        rule: &SgdRule<Self>,
        observing: bool,
    ) -> f64 => crate::optim::sgd::plain_update;
    fn sgd_momentum(
        value: &mut [Self],
        grad: &[Self],
        buffer: &mut [Self],
        rule: &SgdRule<Self>,
        observing: bool,
    ) -> f64 => crate::optim::sgd::momentum_update;
    #[allow(clippy::too_many_arguments)]
    fn adam_update(
        value: &mut [Self],
        grad: &[Self],
        exp_avg: &mut [Self],
        exp_avg_sq: &mut [Self],
        max_exp_avg_sq: Option<&mut [Self]>,
        rule: &AdamRule<Self>,
        observing: bool,
    ) -> f64 => crate::optim::adam::update;
    #[allow(clippy::too_many_arguments)]
    fn rmsprop_update(
        value: &mut [Self],
        grad: &[Self],
        square_avg: &mut [Self],
        grad_avg: Option<&mut [Self]>,
        momentum_buffer: Option<&mut [Self]>,
        rule: &RmsPropRule<Self>,
        observing: bool,
    ) -> f64 => crate::optim::rmsprop::update;

    // LayerNorm (src/layers/layer_norm.rs).
    fn layer_norm_forward(
        x: &[Self],
        d: usize,
        eps: Self,
        affine: &Affine<'_, Self>,
        x_hat: &mut [Self],
        y: &mut [Self],
        inv_std: &mut [Self],
    ) => crate::layers::layer_norm::forward;
    fn layer_norm_param_grads(
        dy: &[Self],
        x_hat: &[Self],
        d: usize,
        weight_grad: Option<&mut [Self]>,
        bias_grad: Option<&mut [Self]>,
    ) => crate::layers::layer_norm::param_grads;
    fn layer_norm_input_grad(
        dy: &[Self],
        x_hat: &[Self],
        d: usize,
        inv_std: &[Self],
        gamma: Option<&[Self]>,
        dx: &mut [Self],
    ) => crate::layers::layer_norm::input_grad;

    // PReLU (src/layers/prelu.rs): row-major `(rows, cols)`, one slope or one per column.
    fn prelu_forward(
        x: &[Self],
        slopes: &[Self],
        cols: usize,
        y: &mut [Self],
    ) => crate::layers::prelu::forward;
    fn prelu_slope_grad(
        x: &[Self],
        grad_y: &[Self],
        cols: usize,
        slope_grad: &mut [Self],
    ) => crate::layers::prelu::slope_grad;
    fn prelu_input_grad(
        x: &[Self],
        grad_y: &[Self],
        slopes: &[Self],
        cols: usize,
        grad_x: &mut [Self],
    ) => crate::layers::prelu::input_grad;

    // Highway (src/layers/highway.rs).
    fn highway_gate(z: &[Self], t: &mut [Self]) => crate::layers::highway::gate;
    fn highway_combine(x: &[Self], h: &[Self], t: &[Self], y: &mut [Self]) => crate::layers::highway::combine;
    fn highway_backward(
        rows: &GateRows<'_, Self>,
        grad_h: &mut [Self],
        grad_t_pre: &mut [Self],
    ) => crate::layers::highway::backward;
    fn highway_carry(
        dx_transform: &[Self],
        dy: &[Self],
        t: &[Self],
        grad_x: &mut [Self],
    ) => crate::layers::highway::carry;

    // The recurrent engine (src/recurrent/engine.rs): a whole forward or backward pass through
    // time, matrix products and cell steps included.
    fn recurrent_forward(
        engine: &mut Engine<Self>,
        input: ArrayView3<'_, Self>,
        initial: Option<&RecurrentState<Self>>,
    ) -> crate::Result<()> => crate::recurrent::engine::forward;
    fn recurrent_backward(
        engine: &mut Engine<Self>,
        grad_outputs: ArrayView3<'_, Self>,
        grad_final: Option<&RecurrentState<Self>>,
        truncate: Option<usize>,
        input_grad: bool,
    ) -> crate::Result<()> => crate::recurrent::engine::backward;
    /// `(T, B, F)` into `(B, T·F)`, both row-major.
    fn sequence_to_rows(
        sequence: &[Self],
        batch: usize,
        features: usize,
        rows: &mut [Self],
    ) => crate::recurrent::layout::sequence_to_rows_kernel;
    /// `(B, T·F)` into `(T, B, F)`, both row-major.
    fn rows_to_sequence(
        rows: &[Self],
        batch: usize,
        features: usize,
        sequence: &mut [Self],
    ) => crate::recurrent::layout::rows_to_sequence_kernel;
    /// The saturated count and the sum of one gate's activations at one step.
    fn gate_saturation(
        values: ArrayView2<'_, Self>,
        function: GateFunction) -> (usize, f64,
    ) => crate::recurrent::time_step_recorder::gate_saturation;

    // Losses and metrics (src/loss/): each returns Σ of the terms in f64 and writes dL/dx.
    fn cross_entropy_rows(
        x: &[Self],
        classes: &[usize],
        rule: &SoftmaxRule<Self>,
        grad: &mut [Self],
    ) -> f64 => crate::loss::cross_entropy::rows;
    fn mse(
        x: &[Self],
        t: &[Self],
        grad_scale: Self,
        grad: &mut [Self],
    ) -> f64 => crate::loss::mse::squared_error;
    fn bce_with_logits(
        x: &[Self],
        t: &[Self],
        cols: usize,
        pos_weight: Option<&[f64]>,
        scale: Self,
        grad: &mut [Self],
    ) -> f64 => crate::loss::bce_with_logits::entries;
    fn first_outside_unit_interval(
        values: &[Self],
    ) -> Option<usize> => crate::loss::bce_with_logits::first_outside_unit_interval;
    fn count_correct(
        logits: ArrayView2<'_, Self>,
        classes: &[usize],
    ) -> usize => crate::loss::metrics::count_correct_kernel;
    fn first_nan(values: ArrayView2<'_, Self>) -> Option<(usize, usize)> => crate::loss::metrics::first_nan;

    // Hooks (src/hooks/): the recorder's statistics and the non-finite detector.
    fn tensor_stats(values: &[Self]) -> TensorStats => crate::hooks::TensorStats::of_slice;
    fn activation_stats(
        input: ArrayView2<'_, Self>,
        output: ArrayView2<'_, Self>,
        activation: Option<&dyn Activation<Self>>,
        saturation_level: f64,
        scratch: &mut Vec<bool>,
    ) -> ActivationStats => crate::hooks::ActivationStats::of_with_scratch_kernel;
    fn block_sum_of_squares(values: &[Self]) -> f64 => crate::hooks::recorder::block_sum_of_squares;
    fn distance_and_copy(
        new: &[Self],
        old: &mut [Self],
        measure: bool,
        copy: bool) -> (f64, f64,
    ) => crate::hooks::recorder::distance_and_copy_kernel;
    fn count_non_finite(values: &[Self]) -> usize => crate::hooks::nonfinite::count_non_finite;

    // Training (src/train/).
    fn gather_rows(
        source: ArrayView2<'_, Self>,
        indices: &[usize],
        dest: ArrayViewMut2<'_, Self>,
    ) => crate::train::batch::gather_rows;

    // Data, files and initialization.
    fn decode_le(bytes: &[u8], stored_f32: bool) -> Vec<Self> => crate::io::safetensors::decode_le;
    fn encode_le(
        values: ArrayViewD<'_, Self>,
        as_f32: bool,
        bytes: &mut Vec<u8>,
    ) => crate::io::safetensors::encode_le;

    // Residual connections (`src/layers/residual.rs`).
    /// `out = a + b`, elementwise.
    fn add_slices(out: &mut [Self], a: &[Self], b: &[Self]) => crate::layers::residual::add_slices;
    /// `dst += src`, elementwise.
    fn add_assign_slices(dst: &mut [Self], src: &[Self]) => crate::layers::residual::add_assign_slices;

    // Batch normalization (`src/layers/batch_norm/core.rs`): rows of C runs of `spatial` entries.
    /// Each channel's mean and biased variance over the batch.
    fn batch_norm_moments(x: &[Self], spatial: usize, mean: &mut [Self], var: &mut [Self])
        => crate::layers::batch_norm::batch_norm_moments;
    /// `y = x̂·γ + β` with `x̂ = (x − μ)·istd`.
    fn batch_norm_normalize(x: &[Self], spatial: usize, statistics: (&[Self], &[Self]),
        affine: Option<(&[Self], &[Self])>, y: &mut [Self])
        => crate::layers::batch_norm::batch_norm_normalize;
    /// Σ dy and Σ dy·x̂ of each channel (x̂ recomputed from x and the statistics).
    fn batch_norm_grad_sums(dy: &[Self], x: &[Self], spatial: usize, statistics: (&[Self], &[Self]),
        sum_dy: &mut [Self], sum_dy_x_hat: &mut [Self])
        => crate::layers::batch_norm::batch_norm_grad_sums;
    /// dL/dx of batch normalization.
    fn batch_norm_input_grad(dy_and_x: (&[Self], &[Self]), spatial: usize, gamma: Option<&[Self]>,
        statistics: (&[Self], &[Self]), sums: (&[Self], &[Self]), train: bool, dx: &mut [Self])
        => crate::layers::batch_norm::batch_norm_input_grad;

    // Convolution (`src/layers/conv/`).
    /// The im2col columns of one sample's planes, beside other samples' (`window.rs`).
    fn im2col(window: &crate::layers::conv::PackedWindow, x: &[Self], channels: usize, col: &mut [Self],
        row_stride: usize) => crate::layers::conv::im2col;
    /// Adds im2col columns back onto one sample's planes (`window.rs`).
    fn col2im(window: &crate::layers::conv::PackedWindow, col: &mut [Self], row_stride: usize, channels: usize,
        dx: &mut [Self]) => crate::layers::conv::col2im;
    /// im2col of one sample by a table of input indices, for small planes (`window.rs`).
    fn im2col_gather(table: &[u32], positions: usize, x: &[Self], channels: usize, col: &mut [Self],
        row_stride: usize) => crate::layers::conv::im2col_gather;
    /// col2im of one sample by a table of input indices (`window.rs`).
    fn col2im_gather(table: &[u32], positions: usize, col: &[Self], row_stride: usize, channels: usize,
        dx: &mut [Self]) => crate::layers::conv::col2im_gather;
    /// A bias added to each channel of a block of channels (`passes.rs`).
    fn add_channel_bias(values: &mut [Self], positions: usize, bias: &[Self]) => crate::layers::conv::add_channel_bias;
    /// Each channel's sum of a block added to a bias gradient (`passes.rs`).
    fn add_channel_sums(values: &[Self], positions: usize, sums: &mut [Self]) => crate::layers::conv::add_channel_sums;
    /// A convolution's product into output rows, plus the bias (`conv2d.rs`).
    fn scatter_product(product: &[Self], samples: usize, positions: usize, first_channel: usize,
        bias: Option<&[Self]>, y: &mut [Self]) => crate::layers::conv::scatter_product;
    /// Output-gradient rows laid out as a product, and the bias gradient (`conv2d.rs`).
    fn gather_product(dy: &[Self], samples: usize, positions: usize, first_channel: usize, product: &mut [Self],
        bias_grad: Option<&mut [Self]>) => crate::layers::conv::gather_product;

    // Pooling, shortcuts and dropout of image networks (`src/layers/conv/`, `dropout.rs`).
    /// Max pooling of every plane, keeping the winners.
    fn max_pool(window: &crate::layers::conv::PackedWindow, x: &[Self], y: &mut [Self], argmax: &mut [u32])
        => crate::layers::conv::max_pool;
    /// The gradient of max pooling.
    fn max_pool_backward(dy: &[Self], argmax: &[u32], plane: usize, dx: &mut [Self])
        => crate::layers::conv::max_pool_backward;
    /// Average pooling of every plane.
    fn avg_pool(window: &crate::layers::conv::PackedWindow, count_include_pad: bool, x: &[Self], y: &mut [Self])
        => crate::layers::conv::avg_pool;
    /// The gradient of average pooling.
    fn avg_pool_backward(window: &crate::layers::conv::PackedWindow, count_include_pad: bool, dy: &[Self],
        dx: &mut [Self]) => crate::layers::conv::avg_pool_backward;
    /// Adaptive (and global) average pooling of every plane.
    fn adaptive_avg_pool(sizes: &[usize; 4], x: &[Self], y: &mut [Self]) => crate::layers::conv::adaptive_avg_pool;
    /// The gradient of adaptive average pooling.
    fn adaptive_avg_pool_backward(sizes: &[usize; 4], dy: &[Self], dx: &mut [Self])
        => crate::layers::conv::adaptive_avg_pool_backward;
    /// The zero-padding shortcut: subsampled channels between zero channels.
    fn pad_channels(input: crate::layers::ImageShape, output: crate::layers::ImageShape, stride: usize, front: usize,
        x: &[Self], y: &mut [Self]) => crate::layers::conv::pad_channels;
    /// The gradient of the zero-padding shortcut.
    fn pad_channels_backward(input: crate::layers::ImageShape, output: crate::layers::ImageShape, stride: usize,
        front: usize, dy: &[Self], dx: &mut [Self]) => crate::layers::conv::pad_channels_backward;
    /// Inverted dropout of single entries.
    fn dropout_entries(key: u64, threshold: u64, scale: Self, x: &[Self], out: &mut [Self])
        => crate::layers::dropout::dropout_entries;
    /// Inverted dropout of whole channels (runs of `spatial` entries).
    fn dropout_channels(key: u64, threshold: u64, scale: Self, spatial: usize, x: &[Self], out: &mut [Self])
        => crate::layers::dropout::dropout_channels;
}
