//! One time step's work, split by batch rows across threads.
//!
//! Within a step the rows of a batch are independent: row b of h_t depends only on row b of
//! h_{t−1} and of the input. So a step's matrix product and cell update can be cut into
//! contiguous groups of rows, each run on its own thread, and the results are bit-identical to
//! the unsplit step (every row is computed by the same code with the same operands). The steps
//! themselves stay in order: the split is inside a step, joined before the next one starts.

use ndarray::ArrayView2;

use super::engine::CellKind;
use super::{gru, lstm, rnn};
use crate::Float;
use crate::linalg::gemm;
use crate::threads::busy;

/// The smallest per-step matrix product `B · H · G·H` that is split across threads. Below,
/// handing half a step to another thread costs more than it saves. Measured on a 2-core
/// AVX-512 machine: a training step of an LSTM 32→128 over 64 steps at batch 32 (2·10⁶
/// multiply-adds per step) took 6.2–6.4 ms on two threads against 9.2–9.6 ms on one.
const PARALLEL_MIN_STEP_WORK: usize = 1 << 20;

/// Fewest rows a thread is given.
const MIN_ROWS_PER_PART: usize = 8;

/// Into how many row groups a step of `batch` rows with `work` multiply-adds is split: one
/// unless rayon's pool has several threads and the step is large enough; at most one group
/// per thread and [`MIN_ROWS_PER_PART`] rows per group. The engine runs a split recursion as a
/// parallel region ([`in_region`]), so that each step's join is cheap.
pub(super) fn parts_for(batch: usize, work: usize) -> usize {
    let threads = rayon::current_num_threads();
    if threads < 2 || work < PARALLEL_MIN_STEP_WORK {
        return 1;
    }
    threads.min(batch / MIN_ROWS_PER_PART).max(1)
}

/// Runs `f` (a whole recursion) as a [`crate::threads::parallel_region`] when its steps are
/// split (`parts > 1`), so that the other threads stay ready for the halves of every step.
pub(super) fn in_region<R: Send>(parts: usize, f: impl FnOnce() -> R + Send) -> R {
    if parts > 1 { crate::threads::parallel_region(f) } else { f() }
}

/// Something made of row-major blocks of the same rows that can be cut between two rows.
pub(super) trait SplitRows: Sized + Send {
    /// Number of rows.
    fn rows(&self) -> usize;
    /// Rows `..at` and `at..`.
    fn split(self, at: usize) -> (Self, Self);
}

/// Runs `work` on `rows` cut into `parts` contiguous groups, in parallel (rayon joins).
pub(super) fn in_parts<R: SplitRows>(rows: R, parts: usize, work: &(impl Fn(R) + Sync)) {
    if parts <= 1 {
        return work(rows);
    }
    let left = parts / 2;
    let at = rows.rows() * left / parts;
    let (a, b) = rows.split(at);
    crate::threads::note_split();
    rayon::join(|| busy(|| in_parts(a, left, work)), || busy(|| in_parts(b, parts - left, work)));
}

/// Rows `..at·width` and the rest of a block, or two empty blocks for an unused one.
fn cut<T>(block: &[T], at: usize, width: usize) -> (&[T], &[T]) {
    if block.is_empty() { (block, block) } else { block.split_at(at * width) }
}

fn cut_mut<T>(block: &mut [T], at: usize, width: usize) -> (&mut [T], &mut [T]) {
    if block.is_empty() { (Default::default(), block) } else { block.split_at_mut(at * width) }
}

/// One step's blocks in the forward pass. Blocks a cell does not use are empty.
pub(super) struct ForwardRows<'a, F> {
    pub rows: usize,
    /// `(rows, H)`.
    pub h_prev: &'a [F],
    pub h: &'a mut [F],
    /// `(rows, G·H)`: the input projection, replaced by the activated gates.
    pub gates: &'a mut [F],
    /// LSTM `(rows, H)`: c_{t−1}, c_t, tanh(c_t).
    pub c_prev: &'a [F],
    pub c: &'a mut [F],
    pub tanh_c: &'a mut [F],
    /// GRU `(rows, 3H)`: the recurrent projection; `(rows, H)`: its n part.
    pub rec: &'a mut [F],
    pub recurrent_n: &'a mut [F],
    pub hidden: usize,
    pub gate_width: usize,
}

impl<F: Float> SplitRows for ForwardRows<'_, F> {
    fn rows(&self) -> usize {
        self.rows
    }
    fn split(self, at: usize) -> (Self, Self) {
        let (h, gh) = (self.hidden, self.gate_width);
        let (h_prev, h_prev_b) = cut(self.h_prev, at, h);
        let (h_t, h_t_b) = cut_mut(self.h, at, h);
        let (gates, gates_b) = cut_mut(self.gates, at, gh);
        let (c_prev, c_prev_b) = cut(self.c_prev, at, h);
        let (c, c_b) = cut_mut(self.c, at, h);
        let (tanh_c, tanh_c_b) = cut_mut(self.tanh_c, at, h);
        let (rec, rec_b) = cut_mut(self.rec, at, gh);
        let (recurrent_n, recurrent_n_b) = cut_mut(self.recurrent_n, at, h);
        (
            ForwardRows {
                rows: at,
                h_prev,
                h: h_t,
                gates,
                c_prev,
                c,
                tanh_c,
                rec,
                recurrent_n,
                hidden: h,
                gate_width: gh,
            },
            ForwardRows {
                rows: self.rows - at,
                h_prev: h_prev_b,
                h: h_t_b,
                gates: gates_b,
                c_prev: c_prev_b,
                c: c_b,
                tanh_c: tanh_c_b,
                rec: rec_b,
                recurrent_n: recurrent_n_b,
                hidden: h,
                gate_width: gh,
            },
        )
    }
}

fn view<F>(data: &[F], rows: usize, cols: usize) -> ArrayView2<'_, F> {
    ArrayView2::from_shape((rows, cols), &data[..rows * cols]).expect("blocks are sized by the engine")
}

fn view_mut<F>(data: &mut [F], rows: usize, cols: usize) -> ndarray::ArrayViewMut2<'_, F> {
    ndarray::ArrayViewMut2::from_shape((rows, cols), &mut data[..rows * cols])
        .expect("blocks are sized by the engine")
}

/// One step forward on some rows: the recurrent product `h_{t−1} W_hhᵀ` (`w_hh_t` is
/// `W_hhᵀ`, `(H, G·H)`) added to the input projection (for the GRU into its own block, from
/// `b_hh`), then the cell update.
pub(super) fn forward<F: Float>(
    cell: CellKind,
    w_hh_t: ArrayView2<'_, F>,
    b_hh: Option<&[F]>,
    r: ForwardRows<'_, F>,
) {
    let (n, h, gh) = (r.rows, r.hidden, r.gate_width);
    match cell {
        CellKind::Rnn(nonlinearity) => {
            gemm(F::one(), view(r.h_prev, n, h), false, w_hh_t, false, F::one(), view_mut(r.gates, n, gh));
            rnn::forward_step(nonlinearity, &r.gates[..n * gh], r.h);
        }
        CellKind::Lstm => {
            gemm(F::one(), view(r.h_prev, n, h), false, w_hh_t, false, F::one(), view_mut(r.gates, n, gh));
            lstm::forward_step(r.gates, r.c_prev, r.c, r.tanh_c, r.h, h);
        }
        CellKind::Gru => {
            let beta = match b_hh {
                Some(b) => {
                    r.rec.chunks_exact_mut(gh).for_each(|row| row.copy_from_slice(b));
                    F::one()
                }
                None => F::zero(),
            };
            gemm(F::one(), view(r.h_prev, n, h), false, w_hh_t, false, beta, view_mut(r.rec, n, gh));
            gru::forward_step(r.gates, r.rec, r.recurrent_n, r.h_prev, r.h, h);
        }
    }
}

/// One step's blocks in the backward pass. Blocks a cell does not use are empty.
pub(super) struct BackwardRows<'a, F> {
    pub rows: usize,
    /// `(rows, H)`: dL/dh_t.
    pub dh: &'a [F],
    /// `(rows, G·H)`: the activated gates of step t.
    pub gates: &'a [F],
    /// RNN `(rows, H)`: h_t. GRU: h_{t−1}.
    pub h: &'a [F],
    /// LSTM `(rows, H)`: c_{t−1}, tanh(c_t); dL/dc (in: from t+1, out: to t−1); Σ dL/dc_t.
    pub c_prev: &'a [F],
    pub tanh_c: &'a [F],
    pub dc: &'a mut [F],
    pub grad_cell: &'a mut [F],
    /// GRU `(rows, H)`: the n part of the recurrent projection.
    pub recurrent_n: &'a [F],
    /// `(rows, G·H)`: dL/d(pre-activations); GRU: dL/d(recurrent projection).
    pub d_pre: &'a mut [F],
    pub d_rec: &'a mut [F],
    /// `(rows, H)`: dL/dh_{t−1}.
    pub dh_prev: &'a mut [F],
    pub hidden: usize,
    pub gate_width: usize,
}

impl<F: Float> SplitRows for BackwardRows<'_, F> {
    fn rows(&self) -> usize {
        self.rows
    }
    fn split(self, at: usize) -> (Self, Self) {
        let (h, gh) = (self.hidden, self.gate_width);
        let (dh, dh_b) = cut(self.dh, at, h);
        let (gates, gates_b) = cut(self.gates, at, gh);
        let (hs, hs_b) = cut(self.h, at, h);
        let (c_prev, c_prev_b) = cut(self.c_prev, at, h);
        let (tanh_c, tanh_c_b) = cut(self.tanh_c, at, h);
        let (dc, dc_b) = cut_mut(self.dc, at, h);
        let (grad_cell, grad_cell_b) = cut_mut(self.grad_cell, at, h);
        let (recurrent_n, recurrent_n_b) = cut(self.recurrent_n, at, h);
        let (d_pre, d_pre_b) = cut_mut(self.d_pre, at, gh);
        let (d_rec, d_rec_b) = cut_mut(self.d_rec, at, gh);
        let (dh_prev, dh_prev_b) = cut_mut(self.dh_prev, at, h);
        (
            BackwardRows {
                rows: at,
                dh,
                gates,
                h: hs,
                c_prev,
                tanh_c,
                dc,
                grad_cell,
                recurrent_n,
                d_pre,
                d_rec,
                dh_prev,
                hidden: h,
                gate_width: gh,
            },
            BackwardRows {
                rows: self.rows - at,
                dh: dh_b,
                gates: gates_b,
                h: hs_b,
                c_prev: c_prev_b,
                tanh_c: tanh_c_b,
                dc: dc_b,
                grad_cell: grad_cell_b,
                recurrent_n: recurrent_n_b,
                d_pre: d_pre_b,
                d_rec: d_rec_b,
                dh_prev: dh_prev_b,
                hidden: h,
                gate_width: gh,
            },
        )
    }
}

/// One step backward on some rows: the cell's local gradients, then, when `propagate`,
/// dL/dh_{t−1} = dRec · W_hh (plus the GRU's direct path, already in `dh_prev`).
pub(super) fn backward<F: Float>(
    cell: CellKind,
    w_hh: ArrayView2<'_, F>,
    propagate: bool,
    r: BackwardRows<'_, F>,
) {
    let (n, h, gh) = (r.rows, r.hidden, r.gate_width);
    match cell {
        CellKind::Rnn(nonlinearity) => rnn::backward_step(nonlinearity, r.h, r.dh, r.d_pre),
        CellKind::Lstm => {
            lstm::backward_step(r.gates, r.c_prev, r.tanh_c, r.dh, r.dc, r.grad_cell, r.d_pre, h)
        }
        CellKind::Gru => {
            gru::backward_step(r.gates, r.recurrent_n, r.h, r.dh, r.d_pre, r.d_rec, r.dh_prev, h)
        }
    }
    if propagate {
        let (d_rec, beta) = match cell {
            CellKind::Gru => (&*r.d_rec, F::one()),
            _ => (&*r.d_pre, F::zero()),
        };
        gemm(F::one(), view(d_rec, n, gh), false, w_hh, false, beta, view_mut(r.dh_prev, n, h));
    }
}
