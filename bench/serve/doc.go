// Package serve is the load generator behind `gptoss bench serve` and
// `gptoss bench startup`: it drives any OpenAI-compatible server (gptoss,
// vLLM, llama.cpp, Ollama) with streaming requests, measures each one
// (time to first token, time per output token, inter-token latencies,
// end-to-end latency), summarises a run the way vLLM's benchmark_serving
// does, runs the suites that reproduce the published gpt-oss measurements,
// and renders the results as JSON and an HTML report with SVG charts.
package serve
