// Package analysis studies what MXFP4 does to gpt-oss weights: per-tensor
// statistics of stored MXFP4 experts (scale exponents, codes, saturation),
// quantisation error of MXFP4 against INT4 with a per-block or per-row
// absmax scale on the same values, and the quantiser that turns a
// dequantized BF16 checkpoint back into the official MXFP4 layout.
//
// It reads checkpoints through its own Store rather than loader.Open, so
// that dequantized checkpoints (which the engine refuses) and tensors the
// engine does not map can be analysed too.
package analysis
