//! [`PRelu`]: the leaky ReLU whose negative slope is learned.

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut1, Ix1};

use crate::hooks::Context;
use crate::layer::{Layer, Mode, check_shape, ensure_shape};
use crate::param::{Param, ParamView, ParamViewMut};
use crate::{Error, Float, Result};

/// Parametric ReLU (He et al. 2015, "Delving Deep into Rectifiers"; PyTorch's `nn.PReLU`):
/// `y = x` for x > 0 and `a·x` otherwise, where the slope `a` is a trainable parameter —
/// one shared by all features (`num_parameters = 1`, the default) or one per feature.
///
/// The parameter is called `"weight"`, with shape `(num_parameters)` and initial value 0.25,
/// as in PyTorch. Because `a` is learned, a unit whose inputs are all negative still passes
/// gradient `a` and can recover; the network can also learn `a ≈ 0` (ReLU) or `a ≈ 1` (linear).
///
/// It is a layer rather than an [`Activation`](crate::Activation) because it owns a parameter;
/// [`Layer::as_activation`] is therefore `None`.
///
/// # Shapes
/// input `(batch, C)` → output `(batch, C)`; with `num_parameters > 1`, C must equal it.
///
/// # Gradients
/// `dx = dy` where x > 0 and `a·dy` otherwise; `da += Σ dy·x` over the entries with x ≤ 0
/// (over the batch, and over all features when the slope is shared). At x = 0 the negative
/// side is used, as in PyTorch.
///
/// ```
/// use gradflow::{Layer, Mode, PRelu, hooks::Context};
/// use ndarray::{array, Array2};
///
/// let mut layer = PRelu::<f64>::default();
/// assert_eq!(layer.weight()[0], 0.25);
/// let mut y = Array2::zeros((0, 0));
/// layer.forward(array![[-2.0, 3.0]].view(), &mut y, Mode::Train, &mut Context::new())?;
/// assert_eq!(y, array![[-0.5, 3.0]]);
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone)]
#[doc(alias = "PReLU")]
pub struct PRelu<F: Float> {
    weight: Param<F, Ix1>,
    seen_forward: bool,
}

impl<F: Float> PRelu<F> {
    /// PyTorch's initial slope, 0.25.
    pub const DEFAULT_INIT: f64 = 0.25;

    /// `nn.PReLU(num_parameters, init)`: `num_parameters` slopes (1, or one per feature), all
    /// starting at `init`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `num_parameters` when it is 0, or `init` when it is not
    /// finite.
    pub fn new(num_parameters: usize, init: f64) -> Result<Self> {
        if num_parameters == 0 {
            return Err(Error::config("PReLU", "num_parameters", "must be at least 1, got 0"));
        }
        if !init.is_finite() {
            return Err(Error::config("PReLU", "init", format!("must be finite, got {init}")));
        }
        let init = crate::checks::setting::<F>("PReLU", "init", init, crate::checks::Needs::Finite)?;
        Self::with_weight(crate::alloc::try_full("PReLU", "num_parameters", num_parameters, init)?)
    }

    /// A PReLU with the given slopes (shape `(num_parameters)`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `weight` when it is empty or holds a non-finite value.
    pub fn from_weight(weight: Array1<F>) -> Result<Self> {
        if weight.is_empty() {
            return Err(Error::config("PReLU", "weight", "must have at least 1 entry, got 0"));
        }
        if let Some((i, v)) = weight.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::config("PReLU", "weight", format!("entry {i} is not finite: {v}")));
        }
        Self::with_weight(weight)
    }

    fn with_weight(weight: Array1<F>) -> Result<Self> {
        Ok(PRelu { weight: Param::try_new(weight, "PReLU", "weight")?, seen_forward: false })
    }

    /// The slopes, `(num_parameters)`.
    pub fn weight(&self) -> &Array1<F> {
        &self.weight.value
    }

    /// The slopes, as a mutable view (their number cannot change).
    pub fn weight_mut(&mut self) -> ArrayViewMut1<'_, F> {
        self.weight.value.view_mut()
    }

    /// The accumulated gradient of the slopes.
    pub fn weight_grad(&self) -> &Array1<F> {
        &self.weight.grad
    }

    /// The number of features the input must have: `None` when one slope is shared by any
    /// number of features.
    fn required_features(&self) -> Option<usize> {
        match self.weight.value.len() {
            1 => None,
            n => Some(n),
        }
    }

    /// The index of the slope used for feature `j`.
    fn slope_index(&self, j: usize) -> usize {
        if self.weight.value.len() == 1 { 0 } else { j }
    }
}

impl<F: Float> Default for PRelu<F> {
    /// `nn.PReLU()`: one shared slope, 0.25.
    fn default() -> Self {
        PRelu { weight: Param::new(Array1::from_elem(1, F::lit(Self::DEFAULT_INIT))), seen_forward: false }
    }
}

impl<F: Float> Layer<F> for PRelu<F> {
    fn kind(&self) -> &'static str {
        "PReLU"
    }

    fn describe(&self) -> String {
        format!("PReLU(num_parameters={})", self.weight.value.len())
    }

    fn output_features(&self, input_features: usize) -> Result<usize> {
        match self.required_features() {
            Some(n) if n != input_features => Err(Error::ShapeMismatch {
                layer: self.describe(),
                what: "input",
                expected: format!("(batch, {n})"),
                actual: format!("(batch, {input_features})"),
            }),
            _ => Ok(input_features),
        }
    }

    fn forward(
        &mut self,
        input: ArrayView2<'_, F>,
        output: &mut Array2<F>,
        _mode: Mode,
        _ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        check_shape(&|| self.describe(), "input", &input, None, self.required_features())?;
        ensure_shape(output, input.dim());
        let slopes = &self.weight.value;
        if let (Some(x), Some(y), Some(a)) = (input.as_slice(), output.as_slice_mut(), slopes.as_slice()) {
            F::prelu_forward(x, a, input.ncols(), y);
            self.seen_forward = true;
            return Ok(());
        }
        // Strided input (a rare path): row by row.
        for (x_row, mut y_row) in input.rows().into_iter().zip(output.rows_mut()) {
            for (j, (&x, y)) in x_row.iter().zip(y_row.iter_mut()).enumerate() {
                *y = if x > F::zero() { x } else { slopes[self.slope_index(j)] * x };
            }
        }
        self.seen_forward = true;
        Ok(())
    }

    fn backward(
        &mut self,
        input: ArrayView2<'_, F>,
        output: ArrayView2<'_, F>,
        grad_output: ArrayView2<'_, F>,
        grad_input: Option<&mut Array2<F>>,
        _ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        if !self.seen_forward {
            return Err(Error::BackwardBeforeForward { layer: self.describe() });
        }
        let name = || self.describe();
        check_shape(&name, "input", &input, None, self.required_features())?;
        let (rows, cols) = input.dim();
        check_shape(&name, "output", &output, Some(rows), Some(cols))?;
        check_shape(&name, "grad_output", &grad_output, Some(rows), Some(cols))?;

        if let (Some(x), Some(gy), Some(a), Some(da)) = (
            input.as_slice(),
            grad_output.as_slice(),
            self.weight.value.as_slice(),
            self.weight.grad.as_slice_mut(),
        ) {
            F::prelu_slope_grad(x, gy, cols, da);
            if let Some(grad_input) = grad_input {
                ensure_shape(grad_input, (rows, cols));
                let gx = grad_input.as_slice_mut().expect("buffers are standard layout");
                F::prelu_input_grad(x, gy, a, cols, gx);
            }
            return Ok(());
        }

        // Strided arrays (a rare path): row by row.
        // da += Σ dy·x over the entries on the negative side.
        let shared = self.weight.value.len() == 1;
        for (x_row, g_row) in input.rows().into_iter().zip(grad_output.rows()) {
            for (j, (&x, &g)) in x_row.iter().zip(g_row).enumerate() {
                if x <= F::zero() {
                    self.weight.grad[if shared { 0 } else { j }] += g * x;
                }
            }
        }

        if let Some(grad_input) = grad_input {
            ensure_shape(grad_input, (rows, cols));
            let slopes = &self.weight.value;
            let rows = input.rows().into_iter().zip(grad_output.rows()).zip(grad_input.rows_mut());
            for ((x_row, g_row), mut gx_row) in rows {
                for (j, ((&x, &g), gx)) in x_row.iter().zip(g_row).zip(gx_row.iter_mut()).enumerate() {
                    *gx = if x > F::zero() { g } else { slopes[self.slope_index(j)] * g };
                }
            }
        }
        Ok(())
    }

    fn visit_parameters<'a>(&'a self, visitor: &mut dyn FnMut(ParamView<'a, F>)) {
        visitor(self.weight.view("weight"));
    }

    fn visit_parameters_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(ParamViewMut<'a, F>)) {
        visitor(self.weight.view_mut("weight"));
    }
}

/// `y = x` where `x > 0`, `a·x` elsewhere, for row-major `x` of `cols` columns; `slopes` holds
/// one slope (shared) or one per column. A kernel ([`crate::kernels`]).
pub(crate) fn forward<F: Float>(x: &[F], slopes: &[F], cols: usize, y: &mut [F]) {
    if cols == 0 {
        return;
    }
    let shared = slopes.len() == 1;
    for (x_row, y_row) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        for (j, (&x, y)) in x_row.iter().zip(y_row.iter_mut()).enumerate() {
            *y = if x > F::zero() { x } else { slopes[if shared { 0 } else { j }] * x };
        }
    }
}

/// `da += Σ dy·x` over the entries on the negative side (`x ≤ 0`), row by row, into one shared
/// slope's gradient or one per column. A kernel ([`crate::kernels`]).
pub(crate) fn slope_grad<F: Float>(x: &[F], grad_y: &[F], cols: usize, slope_grad: &mut [F]) {
    if cols == 0 {
        return;
    }
    let shared = slope_grad.len() == 1;
    for (x_row, g_row) in x.chunks_exact(cols).zip(grad_y.chunks_exact(cols)) {
        for (j, (&x, &g)) in x_row.iter().zip(g_row).enumerate() {
            if x <= F::zero() {
                slope_grad[if shared { 0 } else { j }] += g * x;
            }
        }
    }
}

/// `dx = dy` where `x > 0`, `a·dy` elsewhere. A kernel ([`crate::kernels`]).
pub(crate) fn input_grad<F: Float>(x: &[F], grad_y: &[F], slopes: &[F], cols: usize, grad_x: &mut [F]) {
    if cols == 0 {
        return;
    }
    let shared = slopes.len() == 1;
    let rows = x.chunks_exact(cols).zip(grad_y.chunks_exact(cols)).zip(grad_x.chunks_exact_mut(cols));
    for ((x_row, g_row), gx_row) in rows {
        for (j, ((&x, &g), gx)) in x_row.iter().zip(g_row).zip(gx_row.iter_mut()).enumerate() {
            *gx = if x > F::zero() { g } else { slopes[if shared { 0 } else { j }] * g };
        }
    }
}

#[cfg(test)]
mod tests {
    use approx::assert_abs_diff_eq;

    use super::*;
    use crate::gradcheck::{GradCheckConfig, check_layer};
    use ndarray::array;

    fn run(layer: &mut PRelu<f64>, x: &Array2<f64>, gy: &Array2<f64>) -> (Array2<f64>, Array2<f64>) {
        let mut y = Array2::zeros((0, 0));
        layer.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
        let mut gx = Array2::zeros((0, 0));
        layer.backward(x.view(), y.view(), gy.view(), Some(&mut gx), &mut Context::new()).unwrap();
        (y, gx)
    }

    #[test]
    fn default_is_one_shared_slope_of_a_quarter_named_weight() {
        let layer = PRelu::<f32>::default();
        assert_eq!(layer.weight(), &array![0.25f32]);
        let names: Vec<String> = crate::named_parameters(&layer).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["weight"]);
        assert_eq!(layer.num_parameters(), 1);
        assert_eq!(layer.describe(), "PReLU(num_parameters=1)");
        assert!(layer.as_activation().is_none());
    }

    #[test]
    fn shared_slope_matches_hand_computation() {
        let mut layer = PRelu::new(1, 0.5).unwrap();
        let x = array![[-2.0, 3.0, 0.0], [1.0, -4.0, -1.0]];
        let gy = array![[1.0, 2.0, 3.0], [4.0, 5.0, -6.0]];
        let (y, gx) = run(&mut layer, &x, &gy);
        assert_eq!(y, array![[-1.0, 3.0, 0.0], [1.0, -2.0, -0.5]]);
        // x ≤ 0 → a·dy, else dy
        assert_eq!(gx, array![[0.5, 2.0, 1.5], [4.0, 2.5, -3.0]]);
        // da = (−2)(1) + (0)(3) + (−4)(5) + (−1)(−6) = −16
        assert_eq!(layer.weight_grad(), &array![-16.0]);
        // A second backward adds.
        layer.backward(x.view(), y.view(), gy.view(), None, &mut Context::new()).unwrap();
        assert_eq!(layer.weight_grad(), &array![-32.0]);
    }

    #[test]
    fn per_feature_slopes_match_hand_computation() {
        let mut layer = PRelu::from_weight(array![0.1, 0.2, 0.3]).unwrap();
        let x = array![[-2.0, 3.0, -1.0], [1.0, -4.0, -1.0]];
        let gy = array![[1.0, 2.0, 3.0], [4.0, 5.0, -6.0]];
        let (y, gx) = run(&mut layer, &x, &gy);
        let expected_y = array![[-0.2, 3.0, -0.3], [1.0, -0.8, -0.3]];
        let expected_gx = array![[0.1, 2.0, 0.9], [4.0, 1.0, -1.8]];
        assert_abs_diff_eq!(y, expected_y, epsilon = 1e-15);
        assert_abs_diff_eq!(gx, expected_gx, epsilon = 1e-15);
        // da_0 = (−2)(1), da_1 = (−4)(5), da_2 = (−1)(3) + (−1)(−6)
        assert_eq!(layer.weight_grad(), &array![-2.0, -20.0, 3.0]);
    }

    #[test]
    fn gradients_pass_finite_difference_check() {
        let x = Array2::from_shape_fn((5, 4), |(i, j)| -2.05 + 0.23 * (i * 4 + j) as f64);
        let mut shared = PRelu::new(1, 0.25).unwrap();
        let mut per_feature = PRelu::from_weight(array![0.25, -0.1, 0.7, 1.3]).unwrap();
        for layer in [&mut shared, &mut per_feature] {
            let report = check_layer(layer, &x, GradCheckConfig::default()).unwrap();
            assert_eq!(report.tensors.len(), 2);
            assert_eq!(report.tensors[1].name, "weight");
            report.within(1e-6).unwrap();
        }
    }

    #[test]
    fn feature_count_mismatch_names_the_layer_and_both_shapes() {
        let mut layer = PRelu::<f32>::new(3, 0.25).unwrap();
        let mut y = Array2::zeros((0, 0));
        let err = layer
            .forward(Array2::zeros((2, 4)).view(), &mut y, Mode::Train, &mut Context::new())
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("PReLU(num_parameters=3)") && msg.contains("(batch, 3)") && msg.contains("(2, 4)")
        );
        let msg = layer.output_features(4).unwrap_err().to_string();
        assert!(msg.contains("PReLU(num_parameters=3)") && msg.contains("(batch, 4)"), "{msg}");
        assert_eq!(layer.output_features(3).unwrap(), 3);
        // A shared slope takes any width.
        assert_eq!(PRelu::<f32>::default().output_features(17).unwrap(), 17);
    }

    #[test]
    fn backward_before_forward_is_an_error() {
        let mut layer = PRelu::<f32>::default();
        let x = Array2::zeros((1, 3));
        let err = layer.backward(x.view(), x.view(), x.view(), None, &mut Context::new()).unwrap_err();
        assert!(matches!(err, Error::BackwardBeforeForward { .. }));
    }

    #[test]
    fn bad_configuration_is_refused_with_the_field_named() {
        let msg = PRelu::<f32>::new(0, 0.25).unwrap_err().to_string();
        assert!(msg.contains("PReLU") && msg.contains("num_parameters"), "{msg}");
        let msg = PRelu::<f32>::new(2, f64::NAN).unwrap_err().to_string();
        assert!(msg.contains("PReLU") && msg.contains("init"), "{msg}");
        let msg = PRelu::<f32>::from_weight(array![0.1, f32::INFINITY]).unwrap_err().to_string();
        assert!(msg.contains("weight") && msg.contains("entry 1"), "{msg}");
        assert!(PRelu::<f32>::from_weight(Array1::zeros(0)).is_err());
    }
}
