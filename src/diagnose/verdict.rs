//! [`Verdict`]: the name of what is wrong with the gradient flow, if anything.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The state of a layer, or of the whole model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Verdict {
    /// No threshold fired: the gradient reaches every layer at a usable scale.
    Healthy,
    /// The gradient shrinks on its way down: the layers near the input barely learn.
    Vanishing,
    /// The gradient grows on its way down: updates near the input are too large.
    Exploding,
    /// Most units of a saturating activation (sigmoid, tanh) sit where its derivative is nearly
    /// zero, so they pass almost no gradient.
    Saturated,
    /// Most units of a rectifier output zero for every sample, so they pass no gradient at all.
    Dead,
    /// NaN or infinite values appeared in the outputs or gradients.
    NonFinite,
    /// Training: the loss rises again after falling, or ends above where it started — the
    /// optimizer's steps are too large (the learning rate).
    Unstable,
    /// Training: the loss barely falls, falls only slowly with tiny updates, or stops falling
    /// well above its minimum — the optimizer's steps are too small, or too large to settle (the
    /// learning rate), or the gradient does not reach the layers.
    Stalled,
}

impl Verdict {
    /// Lower-case name, as in reports: `"healthy"`, `"vanishing"`, `"non-finite"`, `"unstable"`, ….
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Vanishing => "vanishing",
            Verdict::Exploding => "exploding",
            Verdict::Saturated => "saturated",
            Verdict::Dead => "dead",
            Verdict::NonFinite => "non-finite",
            Verdict::Unstable => "unstable",
            Verdict::Stalled => "stalled",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
