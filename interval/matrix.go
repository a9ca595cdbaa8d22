package interval

import (
	"math"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// Matrix is an interval matrix [Rows, Cols] in row-major order: entry (i, j)
// is [Lo[i·Cols+j], Hi[i·Cols+j]].
type Matrix struct {
	Rows, Cols int
	Lo, Hi     []float64
}

// NewMatrix returns a zero interval matrix [r, c].
func NewMatrix(r, c int) Matrix {
	return Matrix{Rows: r, Cols: c, Lo: make([]float64, r*c), Hi: make([]float64, r*c)}
}

// PointMatrix returns the degenerate interval matrix of data [r, c] (shared storage).
func PointMatrix(r, c int, data []float64) Matrix {
	return Matrix{Rows: r, Cols: c, Lo: data, Hi: data}
}

// At returns entry (i, j).
func (m Matrix) At(i, j int) I { k := i*m.Cols + j; return I{m.Lo[k], m.Hi[k]} }

// Set sets entry (i, j).
func (m Matrix) Set(i, j int, v I) { k := i*m.Cols + j; m.Lo[k], m.Hi[k] = v.Lo, v.Hi }

// Row returns the lo and hi slices of row i.
func (m Matrix) Row(i int) (lo, hi []float64) {
	return m.Lo[i*m.Cols : (i+1)*m.Cols], m.Hi[i*m.Cols : (i+1)*m.Cols]
}

// Gamma returns γ_n = n·u/(1 − n·u) rounded up, u = 2⁻⁵³ (Higham §3.1).
func Gamma(n int) float64 {
	nu := float64(n) * u
	return Up(Up(nu) / Down(1-nu))
}

// MidRad returns float64 mid and radius matrices with [Lo, Hi] ⊆ mid ± rad
// (Rump's conversion: mid = Lo/2 + Hi/2, rad = max(Hi − mid, mid − Lo) rounded up).
func (m Matrix) MidRad(mid, rad []float64) {
	for k, lo := range m.Lo {
		hi := m.Hi[k]
		c := 0.5*lo + 0.5*hi
		mid[k] = c
		rad[k] = Up(max(hi-c, c-lo))
	}
}

// Weights is a float64 matrix W [Rows, Cols] with an enclosure W ⊆ Mid ± Rad
// and the auxiliary non-negative matrices MulNT needs. Build it with NewWeights.
type Weights struct {
	Rows, Cols int
	Mid, Rad   []float64
	// uv is [U V] [Rows, 2·Cols]: U = Rad + γ|Mid|, V = |Mid| + Rad, rounded up.
	uv []float64
	// zero is set when every entry is exactly 0 (Mid = 0, Rad = 0): every
	// product with W is then exactly 0 (issue 12: flat tails, δ = 0 in a layer).
	zero bool
	// uv32 is uv rounded up to float32 (MulCols32), built once on demand.
	uv32   []float32
	once32 sync.Once
}

// NewWeights prepares W ⊆ mid ± rad [r, c] for products; rad may be nil (a
// point matrix). The slices are kept, not copied.
func NewWeights(r, c int, mid, rad []float64) *Weights {
	w := &Weights{Rows: r, Cols: c, Mid: mid, Rad: rad, uv: make([]float64, 2*r*c)}
	g := Gamma(c + 2)
	w.zero = true
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			k := i*c + j
			a := math.Abs(mid[k])
			var rd float64
			if rad != nil {
				rd = rad[k]
			}
			if a == 0 && rd == 0 {
				continue // an exact 0: its products are exactly 0 (uv stays 0)
			}
			w.zero = false
			w.uv[i*2*c+j] = Up(rd + Up(g*a))
			w.uv[i*2*c+c+j] = Up(a + rd)
		}
	}
	return w
}

// MulNT returns an enclosure of {X·Wᵀ : X ∈ x, W ∈ w}, x [n, k], w [m, k],
// result [n, m], by the midpoint–radius product (package doc). scale
// multiplies the result exactly; it must be ±2^j with j ≥ 0 (MulNT panics
// otherwise; 2·ΔW ḣ uses 2): the BLAS receives it as gemm's α and may
// apply it to a factor before the product (OpenBLAS does), where 2^j·a is
// exact for every float64 a barring overflow (±Inf: the enclosure is then
// infinite or NaN, never wrong), but 2^−j·a may round a subnormal a.
// Exact zeros stay exact (issue 12): a row of x that is exactly 0 in every
// entry, or a w that is exactly 0, gives exactly 0 in the result (a
// product with a zero factor is 0 in float64 too), so a flat stretch of
// the path (a dead layer, δ = 0 in a layer) keeps L′ = [0, 0].
func MulNT(x Matrix, w *Weights, scale float64) Matrix {
	l := NewMulLeft(x)
	defer l.Release()
	return l.MulNT(w, scale)
}

// MulLeft is the left factor x [n, k] of MulNT prepared once for several
// products (issue 12, cert-5000: the dense layer's interval rule
// multiplies each of its input's enclosures by both W(α)'s box and ΔW):
// its midpoints and [|Xm| Xr] rows (Rump's conversion), or x itself when
// it is a finite point, and which rows are exactly 0. MulLeft.MulNT gives
// bit for bit MulNT(x, w, scale); x must not change while it is used.
type MulLeft struct {
	x        Matrix
	point    bool // every entry a finite float64 (Lo = Hi)
	nonneg   bool // point and every entry ≥ 0
	xm, ax   []float64
	bufs     [2]*[]float64 // xm's and ax's pooled storage (Scratch)
	zeroRows []bool        // rows of x exactly 0 in every entry (nil: none)
}

// Release gives the prepared factor's buffers back to the pool (Scratch);
// l must not be used afterwards.
func (l *MulLeft) Release() {
	for q, b := range l.bufs {
		PutScratch(b)
		l.bufs[q] = nil
	}
	l.xm, l.ax = nil, nil
}

// NewMulLeft prepares x for MulLeft.MulNT; Release gives its buffers back.
func NewMulLeft(x Matrix) *MulLeft {
	l := &MulLeft{x: x}
	if nonneg, ok := finitePoint(x); ok {
		l.point, l.nonneg = true, nonneg
	} else {
		n, k := x.Rows, x.Cols
		// every entry is written below: pooled buffers (Scratch)
		l.bufs[0], l.bufs[1] = Scratch(n*k), Scratch(2*n*k)
		l.xm = *l.bufs[0]
		l.ax = *l.bufs[1] // [|Xm| Xr]
		for i := 0; i < n; i++ {
			for j := 0; j < k; j++ {
				lo, hi := x.Lo[i*k+j], x.Hi[i*k+j]
				c := 0.5*lo + 0.5*hi
				l.xm[i*k+j] = c
				l.ax[i*2*k+j] = math.Abs(c)
				l.ax[i*2*k+k+j] = Up(max(hi-c, c-lo))
			}
		}
	}
	k := x.Cols
	for i := 0; i < x.Rows; i++ {
		if zeroRow(x.Lo[i*k:(i+1)*k], x.Hi[i*k:(i+1)*k]) {
			if l.zeroRows == nil {
				l.zeroRows = make([]bool, x.Rows)
			}
			l.zeroRows[i] = true
		}
	}
	return l
}

// MulNT is MulNT(x, w, scale) for the prepared x.
func (l *MulLeft) MulNT(w *Weights, scale float64) Matrix {
	x := l.x
	n, k, m := x.Rows, x.Cols, w.Rows
	if w.Cols != k {
		panic("interval: MulNT: inner dimensions differ")
	}
	if fr, _ := math.Frexp(math.Abs(scale)); fr != 0.5 || math.Abs(scale) < 1 {
		panic("interval: MulNT: scale must be ±2^j with j ≥ 0")
	}
	if w.zero {
		return NewMatrix(n, m)
	}
	if l.point {
		return mulPointNT(l, w, scale)
	}
	mid := make([]float64, n*m)
	rad := make([]float64, n*m)
	if n > 0 && m > 0 && k > 0 {
		blas64.Gemm(blas.NoTrans, blas.Trans, scale, blas64.General{Rows: n, Cols: k, Stride: k, Data: l.xm},
			blas64.General{Rows: m, Cols: k, Stride: k, Data: w.Mid}, 0, blas64.General{Rows: n, Cols: m, Stride: m, Data: mid})
		blas64.Gemm(blas.NoTrans, blas.Trans, math.Abs(scale), blas64.General{Rows: n, Cols: 2 * k, Stride: 2 * k, Data: l.ax},
			blas64.General{Rows: m, Cols: 2 * k, Stride: 2 * k, Data: w.uv}, 0, blas64.General{Rows: n, Cols: m, Stride: m, Data: rad})
	}
	return finishNT(l, mid, rad, m)
}

// finishNT turns MulNT's midpoint and radius products [n, m] into the
// enclosure: the radius gemm's own rounding (a sum of at most 2k
// non-negative products) and underflow are added, and a row of x that is
// exactly 0 gives exactly 0.
func finishNT(l *MulLeft, mid, rad []float64, m int) Matrix {
	n, k := l.x.Rows, l.x.Cols
	// The radius gemm's own rounding: a sum of 2k non-negative products.
	f := Up(1 + 2*Gamma(2*k+2))
	tiny := float64(2*k+2) * 0x1p-1020 // underflow of products, far below any other term
	out := NewMatrix(n, m)
	for t, c := range mid {
		r := Up(Up(rad[t]*f) + tiny)
		out.Lo[t] = Down(c - r)
		out.Hi[t] = Up(c + r)
	}
	for i := 0; i < n; i++ {
		if l.zeroRows != nil && l.zeroRows[i] {
			clear(out.Lo[i*m : (i+1)*m])
			clear(out.Hi[i*m : (i+1)*m])
		}
	}
	return out
}

// finitePoint reports whether every entry of x is one finite float64 (Lo
// = Hi), and whether all are ≥ 0.
func finitePoint(x Matrix) (nonneg, ok bool) {
	nonneg = true
	for t, lo := range x.Lo {
		if lo != x.Hi[t] || lo-lo != 0 {
			return false, false
		}
		nonneg = nonneg && lo >= 0
	}
	return nonneg, true
}

// mulPointNT is MulNT for a point x (finitePoint; e.g. the network input
// times the first layer's weights, issue 12): x is its own midpoint with
// radius 0, so the radius product needs only |x|·Uᵀ (the half of [|Xm|
// Xr]·[U V]ᵀ whose other factor is not 0), one gemm of k columns where the
// general product takes 2k; the same rounding terms as MulNT's (finishNT,
// for a sum of 2k products: an upper bound for k).
func mulPointNT(l *MulLeft, w *Weights, scale float64) Matrix {
	x := l.x
	n, k, m := x.Rows, x.Cols, w.Rows
	ax := x.Lo
	if !l.nonneg {
		ax = make([]float64, n*k)
		for t, v := range x.Lo {
			ax[t] = math.Abs(v)
		}
	}
	mid := make([]float64, n*m)
	rad := make([]float64, n*m)
	if n > 0 && m > 0 && k > 0 {
		blas64.Gemm(blas.NoTrans, blas.Trans, scale, blas64.General{Rows: n, Cols: k, Stride: k, Data: x.Lo},
			blas64.General{Rows: m, Cols: k, Stride: k, Data: w.Mid}, 0, blas64.General{Rows: n, Cols: m, Stride: m, Data: mid})
		blas64.Gemm(blas.NoTrans, blas.Trans, math.Abs(scale), blas64.General{Rows: n, Cols: k, Stride: k, Data: ax},
			blas64.General{Rows: m, Cols: k, Stride: 2 * k, Data: w.uv}, 0, blas64.General{Rows: n, Cols: m, Stride: m, Data: rad})
	}
	return finishNT(l, mid, rad, m)
}

// zeroRow reports whether every interval [lo[j], hi[j]] is exactly [0, 0].
func zeroRow(lo, hi []float64) bool {
	for j := range lo {
		if lo[j] != 0 || hi[j] != 0 {
			return false
		}
	}
	return true
}

// AddRow adds the interval row vector [lo, hi] (length Cols) to every row of m in place.
func (m Matrix) AddRow(lo, hi []float64) {
	for i := 0; i < m.Rows; i++ {
		l, h := m.Row(i)
		for j := range l {
			l[j] = addDown(l[j], lo[j])
			h[j] = addUp(h[j], hi[j])
		}
	}
}

// AddTo sets m = m + x elementwise in place.
func (m Matrix) AddTo(x Matrix) {
	for t := range m.Lo {
		m.Lo[t] = addDown(m.Lo[t], x.Lo[t])
		m.Hi[t] = addUp(m.Hi[t], x.Hi[t])
	}
}

// addDown and addUp bound a + b from below and above; a sum with a zero
// operand is exact and is not rounded (exact zeros stay exact, as in Add).
func addDown(a, b float64) float64 {
	if a == 0 || b == 0 {
		return a + b
	}
	return Down(a + b)
}

func addUp(a, b float64) float64 {
	if a == 0 || b == 0 {
		return a + b
	}
	return Up(a + b)
}
