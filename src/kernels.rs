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
}
