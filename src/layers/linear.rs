//! [`Linear`]: the fully connected layer, `y = x Wᵀ + b`, in PyTorch's layout.

use std::sync::Arc;

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis};
use rand::RngCore;

use crate::hooks::Context;
use crate::init::{Fans, Initializer, LinearDefault, sample_as};
use crate::layer::{Layer, Mode, check_input_features, check_shape, ensure_shape};
use crate::linalg::{gemm, gemm_plus_row};
use crate::param::{Param, ParamView, ParamViewMut};
use crate::{Error, Float, Result};

/// A fully connected layer: `y = x Wᵀ + b` with `weight` of shape `(out, in)` and `bias` of
/// shape `(out)`, exactly as PyTorch's `nn.Linear` (same names, same layout).
///
/// # Shapes
/// input `(batch, in_features)` → output `(batch, out_features)`.
///
/// # Gradients
/// `dW += dyᵀ x`, `db += Σ_batch dy`, `dx = dy W`.
///
/// ```
/// use gradflow::{Linear, Layer};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let layer = Linear::<f32>::new(64, 32, &mut rng).unwrap();
/// assert_eq!(layer.weight().dim(), (32, 64));
/// assert_eq!(layer.num_parameters(), 64 * 32 + 32);
/// ```
#[derive(Debug, Clone)]
pub struct Linear<F: Float> {
    weight: Param<F, ndarray::Ix2>,
    bias: Option<Param<F, ndarray::Ix1>>,
    seen_forward: bool,
}

/// How to build a [`Linear`]: sizes, bias, initializers. Defaults are PyTorch's.
#[derive(Debug, Clone)]
pub struct LinearConfig {
    /// Input features (`in_features`).
    pub in_features: usize,
    /// Output features (`out_features`).
    pub out_features: usize,
    /// Whether the layer has a bias (default `true`).
    pub bias: bool,
    /// Weight initializer (default [`LinearDefault`], U(±1/√in)).
    pub weight_init: Arc<dyn Initializer>,
    /// Bias initializer (default [`LinearDefault`], U(±1/√in)).
    pub bias_init: Arc<dyn Initializer>,
    /// Gain of the activation that follows, passed to the weight initializer (default 1).
    pub activation_gain: f64,
}

impl LinearConfig {
    /// PyTorch's defaults for `nn.Linear(in_features, out_features)`.
    pub fn new(in_features: usize, out_features: usize) -> Self {
        LinearConfig {
            in_features,
            out_features,
            bias: true,
            weight_init: Arc::new(LinearDefault),
            bias_init: Arc::new(LinearDefault),
            activation_gain: 1.0,
        }
    }

    /// Sets whether there is a bias.
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Sets the weight initializer.
    pub fn weight_init(mut self, init: impl Initializer + 'static) -> Self {
        self.weight_init = Arc::new(init);
        self
    }

    /// Sets the bias initializer.
    pub fn bias_init(mut self, init: impl Initializer + 'static) -> Self {
        self.bias_init = Arc::new(init);
        self
    }

    /// Sets the gain of the activation that follows (used by He/Kaiming initializers).
    pub fn activation_gain(mut self, gain: f64) -> Self {
        self.activation_gain = gain;
        self
    }

    /// Builds the layer, drawing its weights from `rng`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field when a size is zero or an initializer refuses.
    pub fn build<F: Float>(&self, rng: &mut dyn RngCore) -> Result<Linear<F>> {
        for (field, value) in [("in_features", self.in_features), ("out_features", self.out_features)] {
            if value == 0 {
                return Err(Error::config("Linear", field, "must be at least 1, got 0"));
            }
        }
        let component = || format!("Linear({}→{})", self.in_features, self.out_features);
        crate::alloc::check_len(&component(), "weight", &[self.out_features, self.in_features])?;
        let fans = Fans::new(self.in_features, self.out_features, self.activation_gain);
        let weight = sample_as(&*self.weight_init, (self.out_features, self.in_features), fans, rng)?;
        let bias = if self.bias {
            let b = sample_as::<F>(&*self.bias_init, (1, self.out_features), fans, rng)?;
            let b = b.into_shape_with_order(self.out_features).expect("1 x out");
            Some(Param::try_new(b, &component(), "bias")?)
        } else {
            None
        };
        let weight = Param::try_new(weight, &component(), "weight")?;
        Ok(Linear { weight, bias, seen_forward: false })
    }
}

impl<F: Float> Linear<F> {
    /// `nn.Linear(in_features, out_features)` with PyTorch's default initialization.
    pub fn new(in_features: usize, out_features: usize, rng: &mut dyn RngCore) -> Result<Self> {
        LinearConfig::new(in_features, out_features).build(rng)
    }

    /// A layer with the given weight `(out, in)` and optional bias `(out)`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the bias length is not `out`, [`Error::InvalidConfig`]
    /// when a dimension is zero or a value is not finite.
    pub fn from_weights(weight: Array2<F>, bias: Option<Array1<F>>) -> Result<Self> {
        let (out, inp) = weight.dim();
        if out == 0 || inp == 0 {
            return Err(Error::config("Linear", "weight", format!("has an empty shape ({out}, {inp})")));
        }
        if let Some(b) = &bias
            && b.len() != out
        {
            return Err(Error::shape(format!("Linear({inp}→{out})"), "bias", format!("({out})"), b.shape()));
        }
        let name = format!("Linear({inp}→{out})");
        crate::check_finite(&name, "weight", weight.iter())?;
        if let Some(b) = &bias {
            crate::check_finite(&name, "bias", b.iter())?;
        }
        let weight = Param::try_new(weight, &name, "weight")?;
        let bias = match bias {
            Some(b) => Some(Param::try_new(b, &name, "bias")?),
            None => None,
        };
        Ok(Linear { weight, bias, seen_forward: false })
    }

    /// Input features.
    pub fn in_features(&self) -> usize {
        self.weight.value.ncols()
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        self.weight.value.nrows()
    }

    /// The weight, `(out, in)`.
    pub fn weight(&self) -> &Array2<F> {
        &self.weight.value
    }

    /// The weight, as a mutable view: its entries can be changed, its shape cannot (assign a
    /// whole new weight with `layer.weight_mut().assign(&w)`, which requires the same shape).
    pub fn weight_mut(&mut self) -> ArrayViewMut2<'_, F> {
        self.weight.value.view_mut()
    }

    /// The bias, `(out)`, if any.
    pub fn bias(&self) -> Option<&Array1<F>> {
        self.bias.as_ref().map(|b| &b.value)
    }

    /// The bias, as a mutable view (its shape cannot change), if any.
    pub fn bias_mut(&mut self) -> Option<ArrayViewMut1<'_, F>> {
        self.bias.as_mut().map(|b| b.value.view_mut())
    }

    /// The accumulated weight gradient.
    pub fn weight_grad(&self) -> &Array2<F> {
        &self.weight.grad
    }

    /// The accumulated bias gradient, if there is a bias.
    pub fn bias_grad(&self) -> Option<&Array1<F>> {
        self.bias.as_ref().map(|b| &b.grad)
    }
}

impl<F: Float> Layer<F> for Linear<F> {
    fn kind(&self) -> &'static str {
        "Linear"
    }

    fn describe(&self) -> String {
        let bias = if self.bias.is_some() { "" } else { ", bias=false" };
        format!("Linear({}→{}{bias})", self.in_features(), self.out_features())
    }

    fn output_features(&self, input_features: usize) -> Result<usize> {
        check_input_features(&|| self.describe(), self.in_features(), input_features)?;
        Ok(self.out_features())
    }

    fn forward(
        &mut self,
        input: ArrayView2<'_, F>,
        output: &mut Array2<F>,
        _mode: Mode,
        _ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        check_shape(&|| self.describe(), "input", &input, None, Some(self.in_features()))?;
        ensure_shape(output, (input.nrows(), self.out_features()));
        let weight = self.weight.value.view();
        match &self.bias {
            Some(b) => gemm_plus_row(input, false, weight, true, b.value.view(), output.view_mut()),
            None => gemm(F::one(), input, false, weight, true, F::zero(), output.view_mut()),
        }
        self.seen_forward = true;
        Ok(())
    }

    fn backward(
        &mut self,
        input: ArrayView2<'_, F>,
        _output: ArrayView2<'_, F>,
        grad_output: ArrayView2<'_, F>,
        grad_input: Option<&mut Array2<F>>,
        _ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        if !self.seen_forward {
            return Err(Error::BackwardBeforeForward { layer: self.describe() });
        }
        let name = || self.describe();
        check_shape(&name, "input", &input, None, Some(self.in_features()))?;
        check_shape(&name, "grad_output", &grad_output, Some(input.nrows()), Some(self.out_features()))?;
        // dW += dyᵀ x
        gemm(F::one(), grad_output, true, input, false, F::one(), self.weight.grad.view_mut());
        if let Some(b) = &mut self.bias {
            add_column_sums(grad_output, &mut b.grad);
        }
        if let Some(grad_input) = grad_input {
            ensure_shape(grad_input, input.dim());
            gemm(
                F::one(),
                grad_output,
                false,
                self.weight.value.view(),
                false,
                F::zero(),
                grad_input.view_mut(),
            );
        }
        Ok(())
    }

    fn visit_parameters<'a>(&'a self, visitor: &mut dyn FnMut(ParamView<'a, F>)) {
        visitor(self.weight.view("weight"));
        if let Some(b) = &self.bias {
            visitor(b.view("bias"));
        }
    }

    fn visit_parameters_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(ParamViewMut<'a, F>)) {
        visitor(self.weight.view_mut("weight"));
        if let Some(b) = &mut self.bias {
            visitor(b.view_mut("bias"));
        }
    }
}

/// `sums[j] += Σᵢ m[i, j]`, row by row (a vectorized loop when both are contiguous).
fn add_column_sums<F: Float>(m: ArrayView2<'_, F>, sums: &mut Array1<F>) {
    match (m.as_slice(), sums.as_slice_mut()) {
        (Some(m), Some(sums)) => F::add_column_sums(sums, m),
        _ => {
            for row in m.axis_iter(Axis(0)) {
                *sums += &row;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{GradCheckConfig, check_layer};
    use ndarray::array;
    use rand::SeedableRng;

    #[test]
    fn forward_matches_hand_computation() {
        let mut layer =
            Linear::from_weights(array![[1.0, 2.0], [0.5, -1.0], [0.0, 3.0]], Some(array![0.1, 0.2, 0.3]))
                .unwrap();
        let mut y = Array2::zeros((0, 0));
        layer.forward(array![[1.0, -1.0]].view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
        assert_eq!(y, array![[1.0 - 2.0 + 0.1, 0.5 + 1.0 + 0.2, -3.0 + 0.3]]);
    }

    #[test]
    fn gradients_pass_finite_difference_check() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for bias in [true, false] {
            let mut layer: Linear<f64> = LinearConfig::new(6, 4).bias(bias).build(&mut rng).unwrap();
            let x = Array2::from_shape_fn((5, 6), |(i, j)| ((i * 7 + j * 3) % 11) as f64 / 5.0 - 1.0);
            let report = check_layer(&mut layer, &x, GradCheckConfig::default()).unwrap();
            assert_eq!(report.tensors.len(), if bias { 3 } else { 2 });
            report.within(1e-6).unwrap();
        }
    }

    #[test]
    fn wrong_input_width_names_the_layer_and_both_shapes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let mut layer = Linear::<f32>::new(3, 2, &mut rng).unwrap();
        let mut y = Array2::zeros((0, 0));
        let err = layer
            .forward(Array2::zeros((4, 5)).view(), &mut y, Mode::Train, &mut Context::new())
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("Linear(3→2)") && msg.contains("(batch, 3)") && msg.contains("(4, 5)"), "{msg}");
    }

    #[test]
    fn backward_before_forward_is_an_error() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let mut layer = Linear::<f32>::new(3, 2, &mut rng).unwrap();
        let x = Array2::zeros((1, 3));
        let g = Array2::zeros((1, 2));
        let err = layer.backward(x.view(), g.view(), g.view(), None, &mut Context::new()).unwrap_err();
        assert!(matches!(err, Error::BackwardBeforeForward { .. }));
    }

    #[test]
    fn zero_width_is_refused_with_the_field_named() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let err = Linear::<f32>::new(0, 2, &mut rng).unwrap_err();
        assert!(err.to_string().contains("in_features"), "{err}");
    }
}
