// Package loader reads gpt-oss checkpoints as published (Hugging Face layout
// with sharded safetensors, or OpenAI's original/ layout) through mmap and
// maps them onto one typed weight set. Tensor data is never copied: every
// Tensor.Data aliases the mapping and stays valid until Checkpoint.Close.
package loader

// DType is a safetensors dtype string as written in the header.
type DType string

// The dtypes gpt-oss uses, plus the common ones a header may carry.
const (
	BF16 DType = "BF16"
	F16  DType = "F16"
	F32  DType = "F32"
	F64  DType = "F64"
	U8   DType = "U8"
	I8   DType = "I8"
	I16  DType = "I16"
	I32  DType = "I32"
	I64  DType = "I64"
	BOOL DType = "BOOL"
)

// Tensor is one stored tensor. Data is row-major little-endian bytes in the
// stored dtype and aliases the file mapping.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// Config is the model configuration normalised from either config.json
// (Hugging Face) or original/config.json (OpenAI).
type Config struct {
	NumLayers       int
	NumExperts      int
	ExpertsPerToken int
	VocabSize       int
	HiddenSize      int
	Intermediate    int // per expert
	NumHeads        int
	NumKVHeads      int
	HeadDim         int
	SlidingWindow   int
	// Sliding[l] reports whether layer l uses the sliding window: from
	// layer_types when present, else even layers slide (OpenAI's rule).
	Sliding []bool

	RopeTheta      float64
	YarnFactor     float64 // rope_scaling.factor (32)
	YarnBetaFast   float64 // HF beta_fast = original rope_ntk_beta (32)
	YarnBetaSlow   float64 // HF beta_slow = original rope_ntk_alpha (1)
	InitialContext int     // original_max_position_embeddings / initial_context_length (4096)
	MaxPositions   int     // max_position_embeddings (131072)
	RMSNormEps     float64 // 1e-5
	SwigluLimit    float64 // 7.0
	SwigluAlpha    float64 // 1.702 (not in config.json; hard-coded in every reference)
	EOSTokenIDs    []int   // config eos plus generation_config eos ids, deduplicated, ids outside the vocabulary dropped
	PadTokenID     int     // -1 when absent or outside the vocabulary
}

// ExpertWeights is one MXFP4 expert projection for all experts of a layer,
// stored out × in: Blocks [E, R, G, 16] U8 (low nibble = even column),
// Scales [E, R, G] U8 (E8M0), Bias [E, R] BF16.
type ExpertWeights struct {
	Blocks Tensor
	Scales Tensor
	Bias   Tensor
}

// LayerWeights holds one transformer block. All dense weights are BF16,
// stored out × in (y = W x + b).
type LayerWeights struct {
	AttnNorm            Tensor // [H]
	Q, K, V             Tensor // [nh*hd, H], [nkv*hd, H], [nkv*hd, H]
	QBias, KBias, VBias Tensor
	O                   Tensor        // [H, nh*hd]
	OBias               Tensor        // [H]
	Sinks               Tensor        // [nh]
	MLPNorm             Tensor        // [H]
	Router              Tensor        // [E, H]
	RouterBias          Tensor        // [E]
	GateUp              ExpertWeights // R = 2*I, rows gate/up interleaved
	Down                ExpertWeights // R = H
}

// Weights is the whole model in stored formats.
type Weights struct {
	Embed     Tensor // [V, H]
	Layers    []LayerWeights
	FinalNorm Tensor // [H]
	LMHead    Tensor // [V, H]
}
