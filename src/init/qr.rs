//! Householder QR decomposition in f64, written out so that the orthogonal initializer needs no
//! LAPACK.

use ndarray::{Array2, ShapeBuilder};

/// The thin QR decomposition `A = Q·R` of an `m×n` matrix with `m ≥ n`.
#[derive(Debug, Clone)]
pub(crate) struct ThinQr {
    /// `m×n`, orthonormal columns.
    pub q: Array2<f64>,
    /// `n×n`, upper triangular. Its diagonal follows LAPACK's sign convention (see
    /// [`householder_qr`]), so it may be negative, as from `torch.linalg.qr`.
    pub r: Array2<f64>,
}

/// Thin QR of `a` (`m×n`, `m ≥ n`) by Householder reflections (Golub & Van Loan, *Matrix
/// Computations*, 4th ed., §5.2.2): step `k` reflects column `k` below the diagonal onto
/// `R[k][k]·e₁` with `H_k = I − τ·v·vᵀ`, `v = x − R[k][k]·e₁`, `τ = 2/(vᵀv)`, and
/// `Q = H₀·H₁·…·H_{n−1}·[I; 0]` is accumulated backwards. As in LAPACK's `dgeqrf`,
/// `R[k][k] = −sign(x₀)·‖x‖` (no cancellation in `v₀ = x₀ − R[k][k]`). A zero column gets
/// `H_k = I` and `R[k][k] = 0`; `Q` still has orthonormal columns.
///
/// Only called with `m ≥ n` (the orthogonal initializer transposes wide matrices first).
pub(crate) fn householder_qr(a: &Array2<f64>) -> ThinQr {
    let (m, n) = a.dim();
    assert!(m >= n, "householder_qr needs rows >= cols, got {m}x{n}");
    // Column-major working copy, so that every reflection works on contiguous slices:
    // column j is work[j*m .. (j+1)*m]. After the loop it holds R above the diagonal and v_k
    // from row k down in column k.
    let mut work = vec![0.0; m * n];
    for ((i, j), &x) in a.indexed_iter() {
        work[j * m + i] = x;
    }
    let mut tau = vec![0.0; n];
    let mut diag = vec![0.0; n];
    for k in 0..n {
        let (done, rest) = work.split_at_mut((k + 1) * m);
        let v = &mut done[k * m + k..];
        let norm = dot(v, v).sqrt();
        if norm == 0.0 {
            continue; // H_k = I, R[k][k] = 0.
        }
        let alpha = v[0];
        let beta = if alpha >= 0.0 { -norm } else { norm };
        v[0] = alpha - beta;
        let t = 2.0 / dot(v, v);
        tau[k] = t;
        diag[k] = beta;
        for column in rest.chunks_exact_mut(m) {
            let below = &mut column[k..];
            let s = t * dot(v, below);
            axpy(-s, v, below);
        }
    }

    let r = Array2::from_shape_fn((n, n), |(i, j)| match i.cmp(&j) {
        std::cmp::Ordering::Less => work[j * m + i],
        std::cmp::Ordering::Equal => diag[j],
        std::cmp::Ordering::Greater => 0.0,
    });

    // Q = H_0 (H_1 (… (H_{n−1} E))), E = first n columns of I. Column j < k of the partial
    // product is still e_j, which H_k (acting on rows ≥ k) leaves alone, so only columns ≥ k
    // are updated.
    let mut q = vec![0.0; m * n];
    for j in 0..n {
        q[j * m + j] = 1.0;
    }
    for k in (0..n).rev() {
        if tau[k] == 0.0 {
            continue;
        }
        let v = &work[k * m + k..(k + 1) * m];
        for column in q.chunks_exact_mut(m).skip(k) {
            let below = &mut column[k..];
            let s = tau[k] * dot(v, below);
            axpy(-s, v, below);
        }
    }
    let q = Array2::from_shape_vec((m, n).f(), q).expect("m*n column-major entries");
    ThinQr { q, r }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `y += alpha·x`.
fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

#[cfg(test)]
mod tests {
    use approx::assert_abs_diff_eq;

    use super::*;
    use crate::init::draw;
    use crate::init::testing::rng;
    use ndarray::array;

    #[test]
    fn two_by_two_by_hand() {
        // A = [[3, 0], [4, 5]]. Gram–Schmidt by hand: q1 = (3, 4)/5, r11 = 5; r12 = q1·(0, 5) = 4;
        // (0, 5) − 4·q1 = (−2.4, 1.8), r22 = 3, q2 = (−0.8, 0.6).
        let qr = householder_qr(&array![[3.0, 0.0], [4.0, 5.0]]);
        // LAPACK's convention: x₀ = 3 > 0, so R[0][0] = −5.
        assert!((qr.r[[0, 0]] + 5.0).abs() < 1e-14);
        // Normalized to a positive diagonal, it is the hand-computed factorization.
        let s: Vec<f64> = (0..2).map(|k| qr.r[[k, k]].signum()).collect();
        let q = Array2::from_shape_fn((2, 2), |(i, j)| qr.q[[i, j]] * s[j]);
        let r = Array2::from_shape_fn((2, 2), |(i, j)| qr.r[[i, j]] * s[i]);
        assert_abs_diff_eq!(q, array![[0.6, -0.8], [0.8, 0.6]], epsilon = 1e-14);
        assert_abs_diff_eq!(r, array![[5.0, 4.0], [0.0, 3.0]], epsilon = 1e-14);
    }

    #[test]
    fn tall_random_matrix_is_reconstructed_with_orthonormal_q() {
        let a = draw::normal("T", (50, 20), 0.0, 1.0, &mut rng(31)).unwrap();
        let ThinQr { q, r } = householder_qr(&a);
        assert_eq!((q.dim(), r.dim()), ((50, 20), (20, 20)));
        assert_abs_diff_eq!(q.dot(&r), a, epsilon = 1e-12);
        assert_abs_diff_eq!(q.t().dot(&q), Array2::eye(20), epsilon = 1e-12);
        for i in 0..20 {
            for j in 0..i {
                assert_eq!(r[[i, j]], 0.0);
            }
        }
    }

    #[test]
    fn a_zero_column_still_gives_orthonormal_q() {
        let mut a = draw::normal("T", (6, 4), 0.0, 1.0, &mut rng(32)).unwrap();
        a.column_mut(0).fill(0.0);
        let ThinQr { q, r } = householder_qr(&a);
        assert_eq!(r[[0, 0]], 0.0);
        assert_abs_diff_eq!(q.dot(&r), a, epsilon = 1e-12);
        assert_abs_diff_eq!(q.t().dot(&q), Array2::eye(4), epsilon = 1e-12);
    }
}
