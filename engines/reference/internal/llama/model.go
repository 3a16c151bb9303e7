package llama

import (
	"errors"
	"fmt"
	"math"
)

// maxChunkRows bounds the rows (batch × positions) of one forward chunk, so a
// long prompt at a large batch is prefilled in pieces of bounded memory.
// Chunking changes no result: every row's arithmetic is independent of it.
const maxChunkRows = 512

// Model is a loaded Llama model with its worker pool. It is safe for one
// Session at a time.
type Model struct {
	cfg     Config
	w       *Weights
	pool    *pool
	invFreq []float32 // rotary inverse frequencies, [head_dim/2]
}

// New returns a model over w using threads workers (at least 1). Call Close to
// stop the workers.
func New(cfg Config, w *Weights, threads int) *Model {
	return &Model{cfg: cfg, w: w, pool: newPool(max(threads, 1)), invFreq: InvFreq(cfg)}
}

// Config returns the model's configuration.
func (m *Model) Config() Config { return m.cfg }

// Weights returns the model's weights.
func (m *Model) Weights() *Weights { return m.w }

// Threads returns the number of workers.
func (m *Model) Threads() int { return m.pool.workers }

// Close stops the worker pool.
func (m *Model) Close() { m.pool.close() }

// InvFreq returns the rotary inverse frequencies the way transformers computes
// them in float32: 1/θ^(2i/d), then, for rope_scaling type llama3, the
// adjustment of _compute_llama3_parameters: low frequencies (wavelength above
// original_max_position_embeddings/low_freq_factor) divided by factor, high
// frequencies (wavelength below …/high_freq_factor) kept, and the band between
// interpolated with smooth = (orig/wavelen − low)/(high − low).
func InvFreq(cfg Config) []float32 {
	d := cfg.HeadDim
	inv := make([]float32, d/2)
	for i := range inv {
		e := float32(2*i) / float32(d)
		inv[i] = 1 / float32(math.Pow(cfg.RopeTheta, float64(e)))
	}
	if cfg.RopeScaling.Kind() != "llama3" {
		return inv
	}
	r := cfg.RopeScaling
	old := float64(r.OriginalMaxPositionEmbeddings)
	lowWavelen := old / r.LowFreqFactor
	highWavelen := old / r.HighFreqFactor
	for i, f32 := range inv {
		f := float64(f32)
		wavelen := 2 * math.Pi / f
		switch {
		case wavelen < highWavelen:
		case wavelen > lowWavelen:
			inv[i] = float32(f / r.Factor)
		default:
			smooth := (old/wavelen - r.LowFreqFactor) / (r.HighFreqFactor - r.LowFreqFactor)
			inv[i] = float32((1-smooth)*f/r.Factor + smooth*f)
		}
	}
	return inv
}

// Session holds the KV cache and scratch buffers of one generation: batch
// independent sequences of up to capacity positions each. All buffers are
// allocated up front, so Forward allocates nothing.
type Session struct {
	m          *Model
	batch, cap int
	pos        int // positions already in the cache
	chunkT     int // positions per forward chunk
	kc, vc     [][]float32
	x, xn, tmp []float32 // [rows][hidden]
	q, att     []float32 // [rows][heads*head_dim]
	k, v       []float32 // [rows][kv*head_dim]
	gate, up   []float32 // [rows][inter]
	last       []float32 // [batch][hidden]
	logits     []float32 // [batch][vocab]
	cos, sin   []float32 // [chunkT][head_dim/2]
	scores     [][]float32
	mm         matmulTask
	attn       attnTask
	act        swigluTask
	bytes      int64
}

// NewSession allocates a session for batch sequences of at most capacity
// positions (prompt plus generated tokens fed back).
func (m *Model) NewSession(batch, capacity int) (*Session, error) {
	c := m.cfg
	if batch < 1 || capacity < 1 {
		return nil, fmt.Errorf("new session: batch %d and capacity %d must be positive", batch, capacity)
	}
	if capacity > c.MaxPositionEmbeddings {
		return nil, fmt.Errorf("new session: %d positions exceed max_position_embeddings %d", capacity, c.MaxPositionEmbeddings)
	}
	s := &Session{m: m, batch: batch, cap: capacity}
	s.chunkT = min(capacity, max(1, maxChunkRows/batch))
	rows := batch * s.chunkT
	qd, kvd := c.NumAttentionHeads*c.HeadDim, c.NumKeyValueHeads*c.HeadDim
	var n int64
	alloc := func(size int) []float32 {
		n += int64(size)
		return make([]float32, size)
	}
	for range c.NumHiddenLayers {
		s.kc = append(s.kc, alloc(batch*capacity*kvd))
		s.vc = append(s.vc, alloc(batch*capacity*kvd))
	}
	s.x, s.xn, s.tmp = alloc(rows*c.HiddenSize), alloc(rows*c.HiddenSize), alloc(rows*c.HiddenSize)
	s.q, s.att = alloc(rows*qd), alloc(rows*qd)
	s.k, s.v = alloc(rows*kvd), alloc(rows*kvd)
	s.gate, s.up = alloc(rows*c.IntermediateSize), alloc(rows*c.IntermediateSize)
	s.last, s.logits = alloc(batch*c.HiddenSize), alloc(batch*c.VocabSize)
	s.cos, s.sin = alloc(s.chunkT*c.HeadDim/2), alloc(s.chunkT*c.HeadDim/2)
	for range m.pool.workers {
		s.scores = append(s.scores, alloc(capacity))
	}
	s.bytes = 4 * n
	return s, nil
}

// Bytes returns the memory held by the session's buffers.
func (s *Session) Bytes() int64 { return s.bytes }

// Pos returns the number of positions already processed.
func (s *Session) Pos() int { return s.pos }

// Reset empties the cache so the session can start a new generation.
func (s *Session) Reset() { s.pos = 0 }

// Forward appends T = len(tokens)/batch positions to every sequence; tokens
// is row-major, sequence b's tokens being tokens[b*T:(b+1)*T]. It returns the
// logits at the last new position of each sequence, [batch][vocab], valid
// until the next call.
func (s *Session) Forward(tokens []int) ([]float32, error) {
	if len(tokens) == 0 || len(tokens)%s.batch != 0 {
		return nil, fmt.Errorf("forward: %d tokens is not a positive multiple of batch %d", len(tokens), s.batch)
	}
	t := len(tokens) / s.batch
	if s.pos+t > s.cap {
		return nil, fmt.Errorf("forward: %d positions exceed the session capacity %d", s.pos+t, s.cap)
	}
	for _, id := range tokens {
		if id < 0 || id >= s.m.cfg.VocabSize {
			return nil, fmt.Errorf("forward: token id %d outside vocab [0, %d)", id, s.m.cfg.VocabSize)
		}
	}
	for c0 := 0; c0 < t; c0 += s.chunkT {
		s.chunk(tokens, t, c0, min(c0+s.chunkT, t))
	}
	return s.logits, nil
}

// chunk runs positions [c0, c1) of the T new ones through every layer and,
// for the chunk holding position T−1, the final norm and lm_head.
func (s *Session) chunk(tokens []int, t, c0, c1 int) {
	m, c, w := s.m, s.m.cfg, s.m.w
	h, hd := c.HiddenSize, c.HeadDim
	qd, kvd := c.NumAttentionHeads*hd, c.NumKeyValueHeads*hd
	ct := c1 - c0
	rows := s.batch * ct
	start := s.pos // cache position of chunk row t=0

	// Row r = b*ct + j holds sequence b at cache position start+j.
	for b := range s.batch {
		for j := range ct {
			id := tokens[b*t+c0+j]
			copy(s.x[(b*ct+j)*h:(b*ct+j+1)*h], w.Embed[id*h:(id+1)*h])
		}
	}
	half := hd / 2
	for j := range ct {
		p := float32(start + j)
		for i, f := range m.invFreq {
			a := f * p // float32 product, as transformers does
			s.cos[j*half+i] = float32(math.Cos(float64(a)))
			s.sin[j*half+i] = float32(math.Sin(float64(a)))
		}
	}
	x, xn := s.x[:rows*h], s.xn[:rows*h]
	eps := float32(c.RMSNormEps)
	for li := range w.Layers {
		l := &w.Layers[li]
		rmsNorm(xn, x, l.AttnNorm, h, eps)
		s.mm.set(m.pool.workers, xn, rows, h,
			segment{w: l.Q, out: s.q, n: qd}, segment{w: l.K, out: s.k, n: kvd}, segment{w: l.V, out: s.v, n: kvd})
		m.pool.do(&s.mm, s.mm.work())
		for b := range s.batch {
			for j := range ct {
				r := b*ct + j
				cs, sn := s.cos[j*half:(j+1)*half], s.sin[j*half:(j+1)*half]
				for hh := range c.NumAttentionHeads {
					rope(s.q[r*qd+hh*hd:r*qd+(hh+1)*hd], cs, sn)
				}
				for hh := range c.NumKeyValueHeads {
					rope(s.k[r*kvd+hh*hd:r*kvd+(hh+1)*hd], cs, sn)
				}
				off := (b*s.cap + start + j) * kvd
				copy(s.kc[li][off:off+kvd], s.k[r*kvd:(r+1)*kvd])
				copy(s.vc[li][off:off+kvd], s.v[r*kvd:(r+1)*kvd])
			}
		}
		s.attn.set(s, li, ct, start)
		m.pool.do(&s.attn, rows*c.NumAttentionHeads*(start+ct)*hd*2)
		s.mm.set(m.pool.workers, s.att, rows, qd, segment{w: l.O, out: s.tmp, n: h})
		m.pool.do(&s.mm, s.mm.work())
		add(x, s.tmp[:rows*h])

		rmsNorm(xn, x, l.MLPNorm, h, eps)
		in := c.IntermediateSize
		s.mm.set(m.pool.workers, xn, rows, h, segment{w: l.Gate, out: s.gate, n: in}, segment{w: l.Up, out: s.up, n: in})
		m.pool.do(&s.mm, s.mm.work())
		s.act.set(s.gate[:rows*in], s.up[:rows*in])
		m.pool.do(&s.act, rows*in*16)
		s.mm.set(m.pool.workers, s.gate, rows, in, segment{w: l.Down, out: s.tmp, n: h})
		m.pool.do(&s.mm, s.mm.work())
		add(x, s.tmp[:rows*h])
	}
	s.pos += ct
	if c1 != t {
		return
	}
	for b := range s.batch {
		r := b*ct + ct - 1
		rmsNorm(s.last[b*h:(b+1)*h], x[r*h:(r+1)*h], w.Norm, h, eps)
	}
	s.mm.set(m.pool.workers, s.last, s.batch, h, segment{w: w.LMHead, out: s.logits, n: c.VocabSize})
	m.pool.do(&s.mm, s.mm.work())
}

// rmsNorm writes weight · x/√(mean(x²)+eps) for every row of width h, as
// LlamaRMSNorm does in float32 (the mean of squares is summed in float64).
func rmsNorm(dst, x, weight []float32, h int, eps float32) {
	for r := 0; r+h <= len(x); r += h {
		xr, dr := x[r:r+h], dst[r:r+h]
		var ss float64
		for _, v := range xr {
			ss += float64(v) * float64(v)
		}
		inv := float32(1 / math.Sqrt(float64(float32(ss/float64(h))+eps)))
		for i, v := range xr {
			dr[i] = weight[i] * (v * inv)
		}
	}
}

// rope rotates one head in place with transformers' rotate_half convention:
// the first and second halves of the head form the (real, imaginary) pairs.
func rope(x, cos, sin []float32) {
	half := len(x) / 2
	x1, x2 := x[:half], x[half:2*half]
	for i := range half {
		a, b := x1[i], x2[i]
		x1[i] = a*cos[i] - b*sin[i]
		x2[i] = b*cos[i] + a*sin[i]
	}
}

func add(dst, src []float32) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] += src[i]
	}
}

// attnTask is causal attention over the KV cache for every (row, head) of a
// chunk; each item is claimed by one worker and uses that worker's score row.
type attnTask struct {
	counter
	s                      *Session
	layer, ct, start, rows int
}

func (t *attnTask) set(s *Session, layer, ct, start int) {
	t.s, t.layer, t.ct, t.start, t.rows = s, layer, ct, start, s.batch*ct
	t.reset()
}

func (t *attnTask) run(worker int) {
	s := t.s
	c := s.m.cfg
	hd, heads := c.HeadDim, c.NumAttentionHeads
	qd, kvd := heads*hd, c.NumKeyValueHeads*hd
	group := heads / c.NumKeyValueHeads
	scale := float32(1 / math.Sqrt(float64(hd)))
	kc, vc := s.kc[t.layer], s.vc[t.layer]
	for {
		item := t.claim()
		if item >= t.rows*heads {
			return
		}
		r, h := item/heads, item%heads
		b, j := r/t.ct, r%t.ct
		n := t.start + j + 1 // attend to cache positions [0, n)
		q := s.q[r*qd+h*hd : r*qd+(h+1)*hd]
		out := s.att[r*qd+h*hd : r*qd+(h+1)*hd]
		kvOff := b*s.cap*kvd + (h/group)*hd
		sc := s.scores[worker][:n]
		mx := float32(math.Inf(-1))
		for p := range sc {
			v := dot(q, kc[kvOff+p*kvd:kvOff+p*kvd+hd]) * scale
			sc[p] = v
			mx = max(mx, v)
		}
		var sum float64
		for p, v := range sc {
			e := math.Exp(float64(v - mx))
			sc[p] = float32(e)
			sum += e
		}
		inv := float32(1 / sum)
		clear(out)
		for p, e := range sc {
			wgt := e * inv
			vr := vc[kvOff+p*kvd : kvOff+p*kvd+hd]
			for i := range out {
				out[i] += wgt * vr[i]
			}
		}
	}
}

// swigluTask computes gate ← silu(gate)·up elementwise, silu(x) = x/(1+e^−x).
type swigluTask struct {
	counter
	gate, up []float32
}

const swigluChunk = 4096

func (t *swigluTask) set(gate, up []float32) {
	t.gate, t.up = gate, up
	t.reset()
}

func (t *swigluTask) run(int) {
	for {
		c := t.claim()
		lo := c * swigluChunk
		if lo >= len(t.gate) {
			return
		}
		hi := min(lo+swigluChunk, len(t.gate))
		g, u := t.gate[lo:hi], t.up[lo:hi]
		for i, v := range g {
			g[i] = float32(float64(v)/(1+math.Exp(-float64(v)))) * u[i]
		}
	}
}

// ErrNaN is returned by Argmax for logits that contain NaN.
var ErrNaN = errors.New("logits contain NaN")

// Argmax returns the index of the largest value, the lowest index on ties.
func Argmax(v []float32) (int, error) {
	best := 0
	for i, x := range v {
		if x != x {
			return 0, fmt.Errorf("argmax at index %d: %w", i, ErrNaN)
		}
		if x > v[best] {
			best = i
		}
	}
	return best, nil
}
