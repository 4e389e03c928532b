//! [`RecurrentState`]: the hidden (and cell) state carried from one time step to the next.

use ndarray::Array3;

use crate::Float;

/// The state of a recurrent layer between two time steps, for every stacked layer, in PyTorch's
/// layout: `hidden` is `h` of shape `(num_layers, batch, hidden_size)` and `cell` is an LSTM's
/// `c` of the same shape (`None` for RNN and GRU).
///
/// It is what [`super::Recurrent::forward_sequence`] accepts as the initial state (PyTorch's
/// `h_0` / `(h_0, c_0)`) and returns as the final state (`h_n` / `(h_n, c_n)`), and also the
/// shape of the gradients with respect to both.
///
/// ```
/// use gradflow::recurrent::RecurrentState;
/// let state = RecurrentState::<f32>::zeros(2, 8, 16, true);
/// assert_eq!(state.hidden.dim(), (2, 8, 16));
/// assert_eq!(state.cell.as_ref().map(|c| c.dim()), Some((2, 8, 16)));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RecurrentState<F: Float> {
    /// h: `(num_layers, batch, hidden_size)`.
    pub hidden: Array3<F>,
    /// c (LSTM only): `(num_layers, batch, hidden_size)`.
    pub cell: Option<Array3<F>>,
}

impl<F: Float> RecurrentState<F> {
    /// A zero state (PyTorch's default when no initial state is given); with a cell state when
    /// `with_cell` is true (for an LSTM).
    pub fn zeros(num_layers: usize, batch: usize, hidden_size: usize, with_cell: bool) -> Self {
        let shape = (num_layers, batch, hidden_size);
        RecurrentState { hidden: Array3::zeros(shape), cell: with_cell.then(|| Array3::zeros(shape)) }
    }

    /// The batch size.
    pub fn batch(&self) -> usize {
        self.hidden.dim().1
    }

    /// Resizes to `(num_layers, batch, hidden_size)` (with or without a cell state),
    /// reallocating only when the shape changes.
    pub(crate) fn ensure(&mut self, shape: (usize, usize, usize), with_cell: bool) {
        if self.hidden.dim() != shape {
            self.hidden = Array3::zeros(shape);
        }
        match (&mut self.cell, with_cell) {
            (Some(c), true) if c.dim() == shape => {}
            (_, true) => self.cell = Some(Array3::zeros(shape)),
            (_, false) => self.cell = None,
        }
    }
}
