package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/cuda-inference-benchmarks/cib/engines/reference/internal/llama"
	"github.com/cuda-inference-benchmarks/cib/engines/reference/internal/safetensors"
	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/protocol/serve"
)

// maxBatch is the largest batch a request may ask for. Rows are independent
// sequences sharing each weight read, so the limit only bounds memory.
const maxBatch = 64

// engine implements serve.Engine for the pure-Go Llama.
type engine struct{}

const bestPractice = "Pure-Go fp32 Llama on the CPU, no dependencies. Weights stored as f32, f16 or bf16 are " +
	"upcast to fp32 at load and all compute is fp32 whatever dtype the request names (the request's dtype is " +
	"recorded in settings.requested_dtype; loaded.dtype says f32). Prefill runs the whole prompt as one batched " +
	"matmul per layer (chunks of at most 512 rows), then decodes token by token against an fp32 KV cache. " +
	"Matmuls split output rows over a fixed pool of request.threads workers (0 = GOMAXPROCS); each output " +
	"element is one sequential fp32 sum, so tokens and logits are bit-identical for any thread count and " +
	"batch size. Greedy argmax takes the lowest index on ties. peak_alloc_bytes counts the fp32 weights plus " +
	"the KV cache and activation buffers, which are allocated up front (Go has no allocator peak to query)."

func (engine) Info() protocol.Info {
	mod, goVer := moduleVersion(), runtime.Version()
	versions := map[string]string{"go": goVer, "module": mod}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
				versions[s.Key] = s.Value
			}
		}
	}
	return protocol.Info{
		Name:           "reference",
		Library:        "reference (pure Go)",
		LibraryVersion: mod + " " + goVer,
		Versions:       versions,
		Devices:        []string{"cpu"},
		DTypes:         []string{"f32", "f16", "bf16"},
		Capabilities: protocol.Capabilities{
			MaxBatch:            maxBatch,
			StreamingTimestamps: true,
			AllocatorStats:      true,
		},
		Options: map[string]string{
			"margins": "file to which every Generate appends one JSON line: the case, and per step the greedy top-1 and top-2 ids of row 0 and their logit margin (parity diagnostics)",
		},
		BestPractice: bestPractice,
	}
}

func moduleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func (engine) Load(ctx context.Context, req *protocol.Request) (serve.Model, protocol.Loaded, error) {
	threads := req.Threads
	if threads == 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	t0 := time.Now()
	cfg, err := llama.ReadConfig(filepath.Join(req.Model, "config.json"))
	if err != nil {
		return nil, protocol.Loaded{}, err
	}
	if err := checkCases(cfg, req.Cases); err != nil {
		return nil, protocol.Loaded{}, err
	}
	ckpt, err := safetensors.Open(req.Model)
	if err != nil {
		return nil, protocol.Loaded{}, err
	}
	w, dtypes, err := llama.LoadWeights(ckpt, cfg)
	if cerr := ckpt.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close checkpoint: %w", cerr)
	}
	if err != nil {
		return nil, protocol.Loaded{}, err
	}
	weightsNs := time.Since(t0).Nanoseconds()

	t1 := time.Now()
	m := llama.New(cfg, w, threads)
	ctxNs := time.Since(t1).Nanoseconds()

	tied := "untied"
	if cfg.TieWordEmbeddings {
		tied = "tied"
	}
	loaded := protocol.Loaded{
		ContextInitNs:     ctxNs,
		WeightsToHostNs:   weightsNs,
		WeightsToDeviceNs: 0,
		DeviceName:        fmt.Sprintf("cpu (%s/%s, %d logical cores)", runtime.GOOS, runtime.GOARCH, runtime.NumCPU()),
		DType:             "f32",
		Params:            cfg.Params(),
		Settings: map[string]string{
			"threads":            strconv.Itoa(m.Threads()),
			"gomaxprocs":         strconv.Itoa(runtime.GOMAXPROCS(0)),
			"compute_dtype":      "f32",
			"requested_dtype":    req.DType,
			"weights_dtype":      strings.Join(dtypes, ","),
			"kv_cache":           "f32",
			"rope":               cfg.RopeScaling.Kind(),
			"lm_head":            tied,
			"attention":          "exact causal softmax over an f32 KV cache",
			"matmul":             "row-parallel, sequential f32 sum per output",
			"prefill_chunk_rows": "512",
		},
	}
	return &model{m: m, weightBytes: w.Bytes(), margins: req.Options["margins"]}, loaded, nil
}

// checkCases rejects cases the model cannot run before any weight is read.
func checkCases(cfg llama.Config, cases []protocol.Case) error {
	for i, c := range cases {
		for j, id := range c.PromptTokens {
			if id >= cfg.VocabSize {
				return serve.BadRequest(fmt.Errorf("cases[%d] (%s): prompt_tokens[%d]=%d outside vocab_size %d", i, c.Name, j, id, cfg.VocabSize))
			}
		}
		if n := len(c.PromptTokens) + c.MaxNewTokens; n > cfg.MaxPositionEmbeddings {
			return serve.Unsupported(fmt.Errorf("cases[%d] (%s): %d prompt + %d new tokens exceed max_position_embeddings %d",
				i, c.Name, len(c.PromptTokens), c.MaxNewTokens, cfg.MaxPositionEmbeddings))
		}
	}
	return nil
}

// model implements serve.Model. It keeps its session between iterations so
// warm-up allocates the KV cache and timed iterations reuse it.
type model struct {
	m           *llama.Model
	sess        *llama.Session
	batch, cap  int
	weightBytes int64
	tokens, ids []int
	margins     string // file for the top-2 margins of row 0, "" for none
	top         topTwo
}

// topTwo collects the top-2 ids and logit margins of row 0 over a Generate.
type topTwo struct {
	Case   string    `json:"case"`
	Top1   []int     `json:"top1"`
	Top2   []int     `json:"top2"`
	Margin []float32 `json:"margin"`
}

func (t *topTwo) add(logits []float32, best int) {
	second := -1
	for i, x := range logits {
		if i != best && (second < 0 || x > logits[second]) {
			second = i
		}
	}
	t.Top1, t.Top2 = append(t.Top1, best), append(t.Top2, second)
	t.Margin = append(t.Margin, logits[best]-logits[second])
}

// appendMargins appends t as one JSON line to path.
func appendMargins(path string, t *topTwo) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("margins: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("margins: %w", err)
	}
	return f.Close()
}

func (md *model) Generate(ctx context.Context, c *protocol.Case, rec *serve.Recorder) error {
	b, p, n := c.BatchSize, len(c.PromptTokens), c.MaxNewTokens
	need := p + n - 1 // the last generated token is never fed back
	if md.sess == nil || md.batch != b || md.cap < need {
		md.sess = nil // let the old cache go before allocating the new one
		s, err := md.m.NewSession(b, need)
		if err != nil {
			return err
		}
		md.sess, md.batch, md.cap = s, b, need
		md.ids = make([]int, b)
	}
	s := md.sess
	s.Reset()
	md.tokens = md.tokens[:0]
	for range b {
		md.tokens = append(md.tokens, c.PromptTokens...)
	}
	vocab := md.m.Config().VocabSize
	md.top = topTwo{Case: c.Name}
	logits, err := s.Forward(md.tokens)
	for step := 0; ; step++ {
		if err != nil {
			return fmt.Errorf("step %d: %w", step, err)
		}
		for r := range b {
			if md.ids[r], err = llama.Argmax(logits[r*vocab : (r+1)*vocab]); err != nil {
				return fmt.Errorf("step %d row %d: %w", step, r, err)
			}
		}
		if md.margins != "" {
			md.top.add(logits[:vocab], md.ids[0])
		}
		rec.Step(md.ids...)
		if step == n-1 {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		logits, err = s.Forward(md.ids)
	}
	rec.PeakAlloc(md.weightBytes + s.Bytes())
	if md.margins != "" {
		return appendMargins(md.margins, &md.top)
	}
	return nil
}

func (md *model) Close() error {
	md.m.Close()
	md.sess = nil
	return nil
}
