//! [`SequentialBuilder`]: deep stacks in one or two readable lines.

use std::sync::Arc;

use rand::RngCore;

use crate::activation::{Act, Activation};
use crate::init::{Initializer, LinearDefault};
use crate::layer::Layer;
use crate::layers::{LinearConfig, Sequential};
use crate::{Error, Float, Result};

enum Spec<F: Float> {
    Linear { out: usize, init: Arc<dyn Initializer>, bias_init: Arc<dyn Initializer>, bias: bool },
    Activation(Arc<dyn Activation<F>>),
    Layer(Box<dyn Layer<F>>),
}

/// Builds a [`Sequential`] from a description, tracking the width so that each `Linear` gets
/// the right `in_features`, and passing each activation's gain to the initializer before it.
///
/// ```
/// use gradflow::Sequential;
/// use gradflow::activation::Tanh;
/// use gradflow::init::GlorotUniform;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// // 50 × (Linear(64→64) + tanh) with Glorot init, then a 10-way output layer.
/// let model = Sequential::<f32>::builder(64)
///     .init(GlorotUniform::default()).repeat(50, 64, Tanh).linear(10)
///     .build(&mut rng).unwrap();
/// assert_eq!(model.len(), 101);
/// ```
pub struct SequentialBuilder<F: Float> {
    in_features: usize,
    init: Arc<dyn Initializer>,
    bias_init: Arc<dyn Initializer>,
    bias: bool,
    specs: Vec<Spec<F>>,
}

impl<F: Float> Sequential<F> {
    /// Starts a builder for a model taking `in_features` inputs.
    pub fn builder(in_features: usize) -> SequentialBuilder<F> {
        SequentialBuilder {
            in_features,
            init: Arc::new(LinearDefault),
            bias_init: Arc::new(LinearDefault),
            bias: true,
            specs: Vec::new(),
        }
    }
}

impl<F: Float> SequentialBuilder<F> {
    /// Sets the weight initializer for the `Linear` layers added after this call (default:
    /// PyTorch's U(±1/√in)).
    pub fn init(mut self, init: impl Initializer + 'static) -> Self {
        self.init = Arc::new(init);
        self
    }

    /// Sets the bias initializer for the `Linear` layers added after this call (default:
    /// PyTorch's U(±1/√in)).
    pub fn bias_init(mut self, init: impl Initializer + 'static) -> Self {
        self.bias_init = Arc::new(init);
        self
    }

    /// Whether the `Linear` layers added after this call have a bias (default `true`).
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Adds `Linear(width → out)` with no activation.
    pub fn linear(mut self, out: usize) -> Self {
        self.specs.push(Spec::Linear {
            out,
            init: self.init.clone(),
            bias_init: self.bias_init.clone(),
            bias: self.bias,
        });
        self
    }

    /// Adds an activation layer.
    pub fn activation(mut self, activation: impl Activation<F> + 'static) -> Self {
        self.specs.push(Spec::Activation(Arc::new(activation)));
        self
    }

    /// Adds `Linear(width → out)` followed by `activation`.
    pub fn dense(self, out: usize, activation: impl Activation<F> + 'static) -> Self {
        self.linear(out).activation(activation)
    }

    /// Adds `count` × (`Linear(→ width)` + `activation`).
    pub fn repeat(mut self, count: usize, width: usize, activation: impl Activation<F> + 'static) -> Self {
        let shared: Arc<dyn Activation<F>> = Arc::new(activation);
        for _ in 0..count {
            self = self.linear(width);
            self.specs.push(Spec::Activation(shared.clone()));
        }
        self
    }

    /// Adds any layer.
    pub fn layer(mut self, layer: impl Layer<F> + 'static) -> Self {
        self.specs.push(Spec::Layer(Box::new(layer)));
        self
    }

    /// Builds the model, drawing weights from `rng` in layer order.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the layer index for a zero width, or a shape mismatch
    /// naming the first added layer that does not fit the width before it.
    pub fn build(self, rng: &mut dyn RngCore) -> Result<Sequential<F>> {
        if self.in_features == 0 {
            return Err(Error::config("Sequential builder", "in_features", "must be at least 1, got 0"));
        }
        let mut model = Sequential::new();
        let mut width = self.in_features;
        let mut specs = self.specs.into_iter().peekable();
        while let Some(spec) = specs.next() {
            let index = model.len();
            match spec {
                Spec::Linear { out, init, bias_init, bias } => {
                    let gain = match specs.peek() {
                        Some(Spec::Activation(a)) => a.gain(),
                        _ => 1.0,
                    };
                    let config = LinearConfig {
                        in_features: width,
                        out_features: out,
                        bias,
                        weight_init: init,
                        bias_init,
                        activation_gain: gain,
                    };
                    model.push(config.build::<F>(rng).map_err(|e| e.at(&index))?);
                    width = out;
                }
                Spec::Activation(a) => {
                    model.push(Act::from_shared(a));
                }
                Spec::Layer(layer) => {
                    width = layer.output_features(width).map_err(|e| e.at(&index))?;
                    model.push_boxed(layer);
                }
            }
        }
        Ok(model)
    }
}
