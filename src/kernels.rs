//! The hot loops, compiled inside gradflow for `f32` and `f64`.
//!
//! # Why
//! Generic code is compiled in the crate that instantiates it, at *that* crate's optimization
//! level. gradflow is generic over [`Float`](crate::Float), so without this module every loop of a training
//! step — activations, optimizer updates, normalization, statistics — would be compiled inside
//! the user's crate, and in the user's debug build (opt-level 0) run 10–60× slower than in
//! release, whatever profile settings gradflow asks for its own dependencies.
//!
//! So every loop whose cost grows with the size of a tensor is a method of [`Kernels`], a
//! supertrait of [`Float`](crate::Float) implemented here for `f32` and `f64`. These implementations are
//! ordinary non-generic functions: rustc compiles them once, in gradflow, at the optimization
//! level the user's profile gives gradflow (`[profile.dev.package."*"] opt-level = 3`, as the
//! README recommends), and the user's crate only calls them. The generic code left in the user's
//! crate orchestrates a few calls per layer, which costs next to nothing even unoptimized.
//!
//! # Adding a kernel
//! Write the loop as a generic function over slices and scalars in the module it belongs to
//! (`pub(crate) fn name<F: Float>(…)`), add one line to the [`kernels!`] list below naming it,
//! and call it as `F::name(…)` from generic code. Argument types use `Self` for the float type.
//! Kernels are `#[inline(never)]`: each one processes a whole tensor, so the call costs nothing,
//! and it keeps the user's crate from instantiating the body itself.
//!
//! [`Float`](crate::Float) is sealed by this trait: it cannot be implemented outside gradflow.

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
                fn $name $(<$($lt),+>)? ($($arg: $ty),*) $(-> $ret)?;
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

    // Residual connections (`src/layers/residual.rs`).
    /// `out = a + b`, elementwise.
    fn add_slices(out: &mut [Self], a: &[Self], b: &[Self]) => crate::layers::residual::add_slices;
    /// `dst += src`, elementwise.
    fn add_assign_slices(dst: &mut [Self], src: &[Self]) => crate::layers::residual::add_assign_slices;

    // Batch normalization (`src/layers/batch_norm/core.rs`): rows of C runs of `spatial` entries.
    /// Each channel's mean and biased variance over the batch.
    fn batch_norm_moments(x: &[Self], spatial: usize, mean: &mut [Self], var: &mut [Self])
        => crate::layers::batch_norm::batch_norm_moments;
    /// `x̂ = (x − μ)·istd`, `y = x̂·γ + β`.
    fn batch_norm_normalize(x: &[Self], spatial: usize, statistics: (&[Self], &[Self]),
        affine: Option<(&[Self], &[Self])>, x_hat: &mut [Self], y: &mut [Self])
        => crate::layers::batch_norm::batch_norm_normalize;
    /// Σ dy and Σ dy·x̂ of each channel.
    fn batch_norm_grad_sums(dy: &[Self], x_hat: &[Self], spatial: usize, sum_dy: &mut [Self], sum_dy_x_hat: &mut [Self])
        => crate::layers::batch_norm::batch_norm_grad_sums;
    /// dL/dx of batch normalization.
    fn batch_norm_input_grad(dy_and_x_hat: (&[Self], &[Self]), spatial: usize, gamma: Option<&[Self]>,
        inv_std: &[Self], sums: (&[Self], &[Self]), train: bool, dx: &mut [Self])
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
