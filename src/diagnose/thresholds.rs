//! [`Thresholds`]: when the diagnosis calls a gradient vanishing, exploding, saturated or dead.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The limits the diagnosis applies, with documented defaults. The gradient ratios compare
/// ‖dL/dh‖ at the first hidden layer (nearest the input) with the last hidden layer (see
/// [`super::HiddenLayer`]).
///
/// ```
/// use gradflow::diagnose::Thresholds;
///
/// // Call a 10× drop already vanishing.
/// let strict = Thresholds { vanishing_ratio: 0.1, ..Thresholds::default() };
/// strict.validate()?;
/// assert!(Thresholds { dead_fraction: 1.5, ..strict }.validate().is_err());
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Vanishing when ‖dL/dh‖ at the first hidden layer is below this share of the last hidden
    /// layer's (default 1e-2: a 100× drop). A layer is vanishing when its own ‖dL/dh‖ is. In (0, 1).
    pub vanishing_ratio: f64,
    /// Exploding when that ratio is above this (default 1e2: a 100× growth). Above 1.
    pub exploding_ratio: f64,
    /// A layer is saturated when more than this share of its units is saturated (default 0.5).
    /// In (0, 1).
    pub saturated_fraction: f64,
    /// A layer is dead when more than this share of its units is dead (default 0.5). In (0, 1).
    ///
    /// Deep ReLU stacks show dead units even at a good initialization, because the
    /// representations of different samples grow alike with depth: at 30 layers of width 128
    /// with He init, 30–45% of a layer's units are zero for a whole batch of 64 (measured with
    /// this crate's tests). Larger batches lower the share.
    pub dead_fraction: f64,
    /// The forward signal counts as shrinking when the activation std of the last hidden layer
    /// is below this share of the first's (default 0.1), and as growing when above its inverse.
    /// It decides which remedy comes first (initialization), not the verdict. In (0, 1).
    pub forward_shrink_ratio: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            vanishing_ratio: 1e-2,
            exploding_ratio: 1e2,
            saturated_fraction: 0.5,
            dead_fraction: 0.5,
            forward_shrink_ratio: 0.1,
        }
    }
}

impl Thresholds {
    /// Checks every limit.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field that is out of range.
    pub fn validate(&self) -> Result<()> {
        let unit = [
            ("vanishing_ratio", self.vanishing_ratio),
            ("saturated_fraction", self.saturated_fraction),
            ("dead_fraction", self.dead_fraction),
            ("forward_shrink_ratio", self.forward_shrink_ratio),
        ];
        for (field, value) in unit {
            if !(value > 0.0 && value < 1.0) {
                return Err(Error::config("Thresholds", field, format!("must be in (0, 1), got {value}")));
            }
        }
        if !(self.exploding_ratio > 1.0 && self.exploding_ratio.is_finite()) {
            return Err(Error::config(
                "Thresholds",
                "exploding_ratio",
                format!("must be a finite number above 1, got {}", self.exploding_ratio),
            ));
        }
        Ok(())
    }
}
