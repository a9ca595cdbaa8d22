package nn

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"
)

// jet32NC and jet32CHW are toNC and fromNC on float32 jets: the transposed
// route the batchnorm2d jets took before they worked on [N, C·H·W] (kept
// here as the tests' oracle).
func (b *BatchNorm2d) jet32NC(in *Jet32) *Jet32 {
	out := &Jet32{N: in.N * b.HW, M: in.WS.general32(in.M.Rows*b.HW, b.BN.Features), Const: in.Const, WS: in.WS}
	toNC(rowsOf32(in.M, 0, in.M.Rows), b.BN.Features, b.HW, rowsOf32(out.M, 0, out.M.Rows))
	return out
}

func (b *BatchNorm2d) jet32CHW(j *Jet32) *Jet32 {
	out := &Jet32{N: j.N / b.HW, M: j.WS.general32(j.M.Rows/b.HW, b.InSize()), Const: j.Const, WS: j.WS}
	fromNC(rowsOf32(j.M, 0, j.M.Rows), b.BN.Features, b.HW, rowsOf32(out.M, 0, out.M.Rows))
	return out
}

// jetNC is in viewed as [rows·HW, C] (matrices from in's workspace; the
// rules of BN then take theirs from it too) and jetCHW its inverse: the
// transposed route of batchnorm2d's jets, JetRows and BatchStats before
// they worked on [N, C·H·W] (the tests' oracle).
func (b *BatchNorm2d) jetNC(in *Jet) *Jet {
	r, _ := in.M.Dims()
	m := in.WS.matrix(r*b.HW, b.BN.Features)
	toNC(rowsOf(in.M, 0, r), b.BN.Features, b.HW, rowsOf(m, 0, r*b.HW))
	return &Jet{N: in.N * b.HW, M: m, Const: in.Const, WS: in.WS}
}

func (b *BatchNorm2d) jetCHW(j *Jet) *Jet {
	r, _ := j.M.Dims()
	m := j.WS.matrix(r/b.HW, b.InSize())
	fromNC(rowsOf(j.M, 0, r), b.BN.Features, b.HW, rowsOf(m, 0, r/b.HW))
	return &Jet{N: j.N / b.HW, M: m, Const: j.Const, WS: j.WS}
}

// nc and chw are toNC and fromNC on matrices: the transposed route of
// batchnorm2d's training and evaluation rules before they worked on
// [N, C·H·W] (the tests' oracle).
func (b *BatchNorm2d) nc(m *mat.Dense) *mat.Dense {
	r, _ := m.Dims()
	out := mat.NewDense(r*b.HW, b.BN.Features, nil)
	toNC(rowsOf(m, 0, r), b.BN.Features, b.HW, rowsOf(out, 0, r*b.HW))
	return out
}

func (b *BatchNorm2d) chw(m *mat.Dense) *mat.Dense {
	r, _ := m.Dims()
	out := mat.NewDense(r/b.HW, b.InSize(), nil)
	fromNC(rowsOf(m, 0, r), b.BN.Features, b.HW, rowsOf(out, 0, r/b.HW))
	return out
}

// drawStatsJet draws a statistics jet [c] with every derivative non-zero
// (the `recompute` policy's moving statistics), variances in [0.5, 1.5].
func drawStatsJet(t *rapid.T, c int) *StatsJet {
	f := func(name string, lo, hi float64) []float64 {
		return rapid.SliceOfN(rapid.Float64Range(lo, hi), c, c).Draw(t, name)
	}
	return &StatsJet{Mean: f("mean", -1, 1), MeanVel: f("meanVel", -1, 1), MeanAcc: f("meanAcc", -1, 1),
		Var: f("var", 0.5, 1.5), VarVel: f("varVel", -0.2, 0.2), VarAcc: f("varAcc", -0.2, 0.2)}
}

func sameBits(a, b []float64) int {
	if len(a) != len(b) {
		return 0
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return i
		}
	}
	return -1
}

// TestBatchNorm2dJetIsTransposedBatchNorm1d: the batchnorm2d jet rules,
// which work on [N, C·H·W] as it is, give bit for bit what batchnorm1d's
// rule gives on the transposed [N·H·W, C] view (toNC, BatchNorm.JetStats,
// fromNC): float64 and float32, constant and moving inputs, the running
// statistics (Jet, Jet32) and a drawn moving statistics jet (JetStats,
// JetStats32), with and without δ.
func TestBatchNorm2dJetIsTransposedBatchNorm1d(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := drawBN2d(t)
		b := c.l.(*BatchNorm2d)
		p, dp := c.at(c.alpha), c.dp
		if rapid.Bool().Draw(t, "constParams") {
			dp = nil
		}
		in := c.inJet(c.alpha)
		if rapid.Bool().Draw(t, "constInput") {
			v := mat.DenseCopyOf(in.Value())
			in = &Jet{N: c.n, M: v, Const: true}
		}
		var st *StatsJet
		if rapid.Bool().Draw(t, "moving") {
			st = drawStatsJet(t, b.BN.Features)
		}
		ws := new(Workspace)
		if rapid.Bool().Draw(t, "nilWorkspace") {
			ws = nil
		}
		in.WS = ws
		var got, want *Jet
		if st == nil {
			got = b.Jet(p, dp, in)
			want = b.jetCHW(b.BN.Jet(p, dp, b.jetNC(in)))
		} else {
			got = b.JetStats(p, dp, st, in)
			want = b.jetCHW(b.BN.JetStats(p, dp, st, b.jetNC(in)))
		}
		if got.Const != want.Const || got.N != want.N {
			t.Fatalf("Const/N %v/%d, want %v/%d", got.Const, got.N, want.Const, want.N)
		}
		if i := sameBits(got.M.RawMatrix().Data, want.M.RawMatrix().Data); i >= 0 {
			t.Fatalf("float64 element %d: %v, want %v (bit for bit)", i, got.M.RawMatrix().Data, want.M.RawMatrix().Data)
		}

		in32 := RoundJet(in)
		in32.WS = ws
		p32, dp32 := RoundTensors(p), RoundTensors(dp)
		if dp == nil {
			dp32 = nil
		}
		var g32, w32 *Jet32
		if st == nil {
			g32 = b.Jet32(p32, dp32, in32)
			w32 = b.jet32CHW(b.BN.Jet32(p32, dp32, b.jet32NC(in32)))
		} else {
			g32 = b.JetStats32(p32, dp32, st, in32)
			w32 = b.jet32CHW(b.BN.JetStats32(p32, dp32, st, b.jet32NC(in32)))
		}
		if g32.Const != w32.Const {
			t.Fatalf("float32 Const %v, want %v", g32.Const, w32.Const)
		}
		gd, wd := g32.M.Data[:g32.M.Rows*g32.M.Cols], w32.M.Data[:w32.M.Rows*w32.M.Cols]
		if len(gd) != len(wd) {
			t.Fatalf("float32 sizes %d, want %d", len(gd), len(wd))
		}
		for i := range gd {
			if math.Float32bits(gd[i]) != math.Float32bits(wd[i]) {
				t.Fatalf("float32 element %d: %v, want %v (bit for bit)", i, gd[i], wd[i])
			}
		}
	})
}

// TestBatchNorm2dTrainIsTransposedBatchNorm1d: the training rules of
// batchnorm2d, which work on [N, C·H·W] as it is, give bit for bit what
// batchnorm1d's give on the transposed [N·H·W, C] view: ForwardTrain's
// output, running_mean, running_var and num_batches_tracked; Backward's
// dx and its accumulated dγ, dβ.
func TestBatchNorm2dTrainIsTransposedBatchNorm1d(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := drawBN2d(t)
		b := c.l.(*BatchNorm2d)
		if c.n*b.HW < 2 {
			c.n = 2
			c.a = append(c.a, c.b...)
		}
		x := mat.NewDense(c.n, b.InSize(), append([]float64(nil), c.a[:c.n*b.InSize()]...))
		clone := func() []*Tensor {
			out := make([]*Tensor, len(c.p0))
			for i, p := range c.p0 {
				out[i] = p.Clone()
			}
			return out
		}
		p1, p2 := clone(), clone()
		got := b.ForwardTrain(p1, x)
		want := b.chw(b.BN.ForwardTrain(p2, b.nc(x)))
		if i := sameBits(got.RawMatrix().Data, want.RawMatrix().Data); i >= 0 {
			t.Fatalf("ForwardTrain element %d: %v, want %v", i, got.RawMatrix().Data[i], want.RawMatrix().Data[i])
		}
		for k := range p1 {
			if i := sameBits(p1[k].Data, p2[k].Data); i >= 0 {
				t.Fatalf("ForwardTrain tensor %d element %d: %v, want %v", k, i, p1[k].Data[i], p2[k].Data[i])
			}
		}
		k := c.n * b.InSize()
		dy := mat.NewDense(c.n, b.InSize(), rapid.SliceOfN(rapid.Float64Range(-2, 2), k, k).Draw(t, "dy"))
		mk := func() []*Tensor {
			gs := make([]*Tensor, len(c.p0))
			for i := 0; i < 2; i++ {
				gs[i] = NewTensor(b.BN.Features)
				for j := range gs[i].Data {
					gs[i].Data[j] = 0.25 * float64(j+1)
				}
			}
			return gs
		}
		ga, gb := mk(), mk()
		p := c.at(c.alpha)
		dx := b.Backward(p, x, nil, dy, ga)
		wdx := b.chw(b.BN.Backward(p, b.nc(x), nil, b.nc(dy), gb))
		if i := sameBits(dx.RawMatrix().Data, wdx.RawMatrix().Data); i >= 0 {
			t.Fatalf("Backward dx element %d: %v, want %v", i, dx.RawMatrix().Data[i], wdx.RawMatrix().Data[i])
		}
		for i := 0; i < 2; i++ {
			if j := sameBits(ga[i].Data, gb[i].Data); j >= 0 {
				t.Fatalf("Backward gradient %d element %d: %v, want %v", i, j, ga[i].Data[j], gb[i].Data[j])
			}
		}
	})
}

// BenchmarkBatchNorm2dTrain times a training step's ForwardTrain and
// Backward of a resnet's first batchnorm2d (16 channels, 28×28, batch 128)
// on [N, C·H·W] (direct) and on the transposed copies (transposed).
func BenchmarkBatchNorm2dTrain(bm *testing.B) {
	l, _, err := BuildLayer(LayerSpec{Type: "batchnorm2d"}, []int{16, 28, 28})
	if err != nil {
		bm.Fatal(err)
	}
	b := l.(*BatchNorm2d)
	p := b.ResetParams()
	n := 128
	x, dy := mat.NewDense(n, b.InSize(), nil), mat.NewDense(n, b.InSize(), nil)
	for i, d := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = math.Sin(float64(i))
		dy.RawMatrix().Data[i] = math.Cos(float64(i)) * d
	}
	grads := []*Tensor{NewTensor(16), NewTensor(16)}
	bm.Run("direct", func(bm *testing.B) {
		for range bm.N {
			b.ForwardTrain(p, x)
			b.Backward(p, x, nil, dy, grads)
		}
	})
	bm.Run("transposed", func(bm *testing.B) {
		for range bm.N {
			b.chw(b.BN.ForwardTrain(p, b.nc(x)))
			b.chw(b.BN.Backward(p, b.nc(x), nil, b.nc(dy), grads))
		}
	})
}

// TestBatchNorm2dRowsStatsAreTransposed: batchnorm2d's JetRows and
// BatchStats, which work on [N, C·H·W] as it is, give bit for bit what
// batchnorm1d's JetRows and BatchStatsJet give on the transposed [N·H·W, C]
// view (jetNC, jetCHW: the route they took before), for constant and moving
// inputs, with every row at its own α.
func TestBatchNorm2dRowsStatsAreTransposed(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := drawBN2d(t)
		b := c.l.(*BatchNorm2d)
		in := c.inJet(c.alpha)
		if rapid.Bool().Draw(t, "constInput") {
			in = &Jet{N: c.n, M: mat.DenseCopyOf(in.Value()), Const: true}
		}
		alphas := rapid.SliceOfN(rapid.Float64Range(0, 1), c.n, c.n).Draw(t, "alphas")
		got := b.JetRows(c.p0, c.dp, alphas, in)
		al := make([]float64, c.n*b.HW)
		for i, a := range alphas {
			for s := 0; s < b.HW; s++ {
				al[i*b.HW+s] = a
			}
		}
		want := b.jetCHW(b.BN.JetRows(c.p0, c.dp, al, b.jetNC(in)))
		if got.N != want.N || got.Const != want.Const {
			t.Fatalf("JetRows N/Const %d/%v, want %d/%v", got.N, got.Const, want.N, want.Const)
		}
		if i := sameBits(got.M.RawMatrix().Data, want.M.RawMatrix().Data); i >= 0 {
			t.Fatalf("JetRows element %d: %v, want %v (bit for bit)", i, got.M.RawMatrix().Data[i], want.M.RawMatrix().Data[i])
		}
		gs, ws := b.BatchStats(in), BatchStatsJet(b.jetNC(in), false)
		for _, f := range []struct {
			name      string
			got, want []float64
		}{{"mean", gs.Mean, ws.Mean}, {"mean velocity", gs.MeanVel, ws.MeanVel}, {"mean acceleration", gs.MeanAcc, ws.MeanAcc},
			{"var", gs.Var, ws.Var}, {"var velocity", gs.VarVel, ws.VarVel}, {"var acceleration", gs.VarAcc, ws.VarAcc}} {
			if len(f.got) != b.BN.Features {
				t.Fatalf("BatchStats %s: %d channels, want %d", f.name, len(f.got), b.BN.Features)
			}
			if i := sameBits(f.got, f.want); i >= 0 {
				t.Fatalf("BatchStats %s channel %d: %v, want %v (bit for bit)", f.name, i, f.got, f.want)
			}
		}
	})
}

// BenchmarkBatchNorm2dRowsStats times JetRows and BatchStats of a
// resnet's first batchnorm2d (16 channels, 28×28, 64 examples, a moving
// input) on [N, C·H·W] (direct) and on the transposed copies (transposed).
func BenchmarkBatchNorm2dRowsStats(bm *testing.B) {
	l, _, err := BuildLayer(LayerSpec{Type: "batchnorm2d"}, []int{16, 28, 28})
	if err != nil {
		bm.Fatal(err)
	}
	b := l.(*BatchNorm2d)
	p, dp := b.ResetParams(), b.ResetParams()
	n := 64
	in := &Jet{N: n, M: mat.NewDense(3*n, b.InSize(), nil)}
	for i := range in.M.RawMatrix().Data {
		in.M.RawMatrix().Data[i] = math.Sin(float64(i))
	}
	alphas := make([]float64, n)
	al := make([]float64, n*b.HW)
	for i := range alphas {
		alphas[i] = float64(i) / float64(n)
		for s := 0; s < b.HW; s++ {
			al[i*b.HW+s] = alphas[i]
		}
	}
	bm.Run("direct", func(bm *testing.B) {
		for range bm.N {
			b.JetRows(p, dp, alphas, in)
			b.BatchStats(in)
		}
	})
	bm.Run("transposed", func(bm *testing.B) {
		for range bm.N {
			b.jetCHW(b.BN.JetRows(p, dp, al, b.jetNC(in)))
			BatchStatsJet(b.jetNC(in), false)
		}
	})
}
