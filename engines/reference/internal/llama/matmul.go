package llama

// Matrix products here compute out[m][n] = Σ_k x[m][k]·w[n][k] (x times w
// transposed, w in HF [out, in] layout). Every output element is one
// sequential float32 sum over k in increasing order, whichever kernel and
// worker computes it, so results are bit-identical for any thread count and
// any batch size. Speed comes from computing several independent sums at once
// (4 weight rows × up to 2 input rows) so each loaded value is reused and the
// float adds of different sums overlap.

// rowTile is the number of weight rows a kernel handles together; chunks of
// work are multiples of it.
const rowTile = 4

// segment is one weight matrix and its output within a matmulTask.
type segment struct {
	w   []float32 // [n][k]
	out []float32 // [m][n]
	n   int
}

// matmulTask multiplies the same input x [m][k] by up to three weight
// matrices (e.g. q, k and v projections) in one parallel dispatch.
type matmulTask struct {
	counter
	x     []float32
	m, k  int
	segs  [3]segment
	nsegs int
	chunk int // weight rows per chunk, a multiple of rowTile
}

// set prepares t for x [m][k] and the given segments; workers is the pool
// size, used only to pick a chunk size that balances the load.
func (t *matmulTask) set(workers int, x []float32, m, k int, segs ...segment) {
	t.x, t.m, t.k, t.nsegs = x, m, k, len(segs)
	rows := 0
	for i, s := range segs {
		t.segs[i] = s
		rows += s.n
	}
	// About four chunks per worker, never below one tile.
	c := (rows + 4*workers - 1) / (4 * workers)
	t.chunk = max(rowTile, (c+rowTile-1)/rowTile*rowTile)
	t.reset()
}

// work returns the task's multiply-add count.
func (t *matmulTask) work() int {
	rows := 0
	for _, s := range t.segs[:t.nsegs] {
		rows += s.n
	}
	return t.m * t.k * rows
}

func (t *matmulTask) run(int) {
	for {
		c := t.claim()
		seg := -1
		for i := range t.nsegs {
			nc := (t.segs[i].n + t.chunk - 1) / t.chunk
			if c < nc {
				seg = i
				break
			}
			c -= nc
		}
		if seg < 0 {
			return
		}
		s := &t.segs[seg]
		r0 := c * t.chunk
		matmulRows(s.out, s.n, t.x, t.m, t.k, s.w, r0, min(r0+t.chunk, s.n))
	}
}

// matmulRows computes output columns [r0, r1) of out [m][ldo] = x [m][k] · w^T.
func matmulRows(out []float32, ldo int, x []float32, m, k int, w []float32, r0, r1 int) {
	r := r0
	for ; r+4 <= r1; r += 4 {
		w0, w1, w2, w3 := w[r*k:(r+1)*k], w[(r+1)*k:(r+2)*k], w[(r+2)*k:(r+3)*k], w[(r+3)*k:(r+4)*k]
		i := 0
		for ; i+2 <= m; i += 2 {
			a, b := x[i*k:(i+1)*k], x[(i+1)*k:(i+2)*k]
			a0, a1, a2, a3, b0, b1, b2, b3 := dot4x2(a, b, w0, w1, w2, w3)
			o := out[i*ldo+r : i*ldo+r+4]
			o[0], o[1], o[2], o[3] = a0, a1, a2, a3
			o = out[(i+1)*ldo+r : (i+1)*ldo+r+4]
			o[0], o[1], o[2], o[3] = b0, b1, b2, b3
		}
		if i < m {
			s0, s1, s2, s3 := dot4(x[i*k:(i+1)*k], w0, w1, w2, w3)
			o := out[i*ldo+r : i*ldo+r+4]
			o[0], o[1], o[2], o[3] = s0, s1, s2, s3
		}
	}
	for ; r < r1; r++ {
		wr := w[r*k : (r+1)*k]
		for i := range m {
			out[i*ldo+r] = dot(x[i*k:(i+1)*k], wr)
		}
	}
}

// dot is the sequential float32 sum Σ x[i]·w[i].
func dot(x, w []float32) float32 {
	w = w[:len(x)]
	var s float32
	for i, v := range x {
		s += v * w[i]
	}
	return s
}

// dot4 returns dot(x, w0) … dot(x, w3), each summed in the same order as dot.
func dot4(x, w0, w1, w2, w3 []float32) (s0, s1, s2, s3 float32) {
	n := len(x)
	w0, w1, w2, w3 = w0[:n], w1[:n], w2[:n], w3[:n]
	for i, v := range x {
		s0 += v * w0[i]
		s1 += v * w1[i]
		s2 += v * w2[i]
		s3 += v * w3[i]
	}
	return
}

// dot4x2 returns dot(a, w0…w3) and dot(b, w0…w3), each summed in the same
// order as dot.
func dot4x2(a, b, w0, w1, w2, w3 []float32) (a0, a1, a2, a3, b0, b1, b2, b3 float32) {
	n := len(a)
	b, w0, w1, w2, w3 = b[:n], w0[:n], w1[:n], w2[:n], w3[:n]
	for i, u := range a {
		v := b[i]
		x0, x1, x2, x3 := w0[i], w1[i], w2[i], w3[i]
		a0 += u * x0
		a1 += u * x1
		a2 += u * x2
		a3 += u * x3
		b0 += v * x0
		b1 += v * x1
		b2 += v * x2
		b3 += v * x3
	}
	return
}
