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
    fn add_to(dst: &mut [Self], src: &[Self]) => crate::elementwise::add_to;
    fn add_pair(a: &[Self], b: &[Self], out: &mut [Self]) => crate::elementwise::add_pair;
    fn scale_into(factor: Self, x: &[Self], out: &mut [Self]) => crate::elementwise::scale_into;
    fn scale_in_place(values: &mut [Self], factor: Self) => crate::elementwise::scale_in_place;
    fn clamp_in_place(values: &mut [Self], low: Self, high: Self) => crate::elementwise::clamp_in_place;
    fn dot(x: &[Self], y: &[Self]) -> Self => crate::elementwise::dot;
    fn sum_of_squares_f64(values: &[Self]) -> f64 => crate::elementwise::sum_of_squares_f64;

    // Activations: forward and backward over slices (src/activation/).
    fn sigmoid_forward(x: &[Self], y: &mut [Self]) => crate::activation::sigmoid::forward;
    fn sigmoid_backward(x: &[Self], y: &[Self], grad_y: &[Self], grad_x: &mut [Self]) => crate::activation::sigmoid::backward;
    fn tanh_forward(x: &[Self], y: &mut [Self]) => crate::activation::tanh::forward;
    fn tanh_backward(x: &[Self], y: &[Self], grad_y: &[Self], grad_x: &mut [Self]) => crate::activation::tanh::backward;
    fn relu_forward(x: &[Self], y: &mut [Self]) => crate::activation::relu::forward;
    fn relu_backward(x: &[Self], y: &[Self], grad_y: &[Self], grad_x: &mut [Self]) => crate::activation::relu::backward;
    fn leaky_relu_forward(leaky_relu: &crate::activation::LeakyRelu, x: &[Self], y: &mut [Self]) => crate::activation::leaky_relu::forward;
    fn leaky_relu_backward(leaky_relu: &crate::activation::LeakyRelu, x: &[Self], y: &[Self], grad_y: &[Self], grad_x: &mut [Self]) => crate::activation::leaky_relu::backward;
    fn elu_forward(elu: &crate::activation::Elu, x: &[Self], y: &mut [Self]) => crate::activation::elu::forward;
    fn elu_backward(elu: &crate::activation::Elu, x: &[Self], y: &[Self], grad_y: &[Self], grad_x: &mut [Self]) => crate::activation::elu::backward;
    fn selu_forward(x: &[Self], y: &mut [Self]) => crate::activation::selu::forward;
    fn selu_backward(x: &[Self], y: &[Self], grad_y: &[Self], grad_x: &mut [Self]) => crate::activation::selu::backward;
    fn gelu_forward(gelu: &crate::activation::Gelu, x: &[Self], y: &mut [Self]) => crate::activation::gelu::forward;
    fn gelu_backward(gelu: &crate::activation::Gelu, x: &[Self], y: &[Self], grad_y: &[Self], grad_x: &mut [Self]) => crate::activation::gelu::backward;
    fn silu_forward(x: &[Self], y: &mut [Self]) => crate::activation::silu::forward;
    fn silu_backward(x: &[Self], y: &[Self], grad_y: &[Self], grad_x: &mut [Self]) => crate::activation::silu::backward;
    fn softsign_forward(x: &[Self], y: &mut [Self]) => crate::activation::softsign::forward;
    fn softsign_backward(x: &[Self], y: &[Self], grad_y: &[Self], grad_x: &mut [Self]) => crate::activation::softsign::backward;
    fn softplus_forward(softplus: &crate::activation::Softplus, x: &[Self], y: &mut [Self]) => crate::activation::softplus::forward;
    fn softplus_backward(softplus: &crate::activation::Softplus, x: &[Self], y: &[Self], grad_y: &[Self], grad_x: &mut [Self]) => crate::activation::softplus::backward;

    // Optimizers (src/optim/): each returns Σ(new − old)² of the update when `observing`.
    fn sgd_plain(value: &mut [Self], grad: &[Self], rule: &crate::optim::sgd::SgdRule<Self>, observing: bool) -> f64 => crate::optim::sgd::plain_update;
    fn sgd_momentum(value: &mut [Self], grad: &[Self], buffer: &mut [Self], rule: &crate::optim::sgd::SgdRule<Self>, observing: bool) -> f64 => crate::optim::sgd::momentum_update;
    #[allow(clippy::too_many_arguments)]
    fn adam_update(value: &mut [Self], grad: &[Self], exp_avg: &mut [Self], exp_avg_sq: &mut [Self], max_exp_avg_sq: Option<&mut [Self]>, rule: &crate::optim::adam::AdamRule<Self>, observing: bool) -> f64 => crate::optim::adam::update;
    #[allow(clippy::too_many_arguments)]
    fn rmsprop_update(value: &mut [Self], grad: &[Self], square_avg: &mut [Self], grad_avg: Option<&mut [Self]>, momentum_buffer: Option<&mut [Self]>, rule: &crate::optim::rmsprop::RmsPropRule<Self>, observing: bool) -> f64 => crate::optim::rmsprop::update;
}
