// Package driver is a thin layer over the CUDA driver API, loaded at run
// time with dlopen("libcuda.so.1"). It carries its own declarations of the
// few types and functions it uses, so building needs neither cuda.h nor
// libcuda, and a binary built with it starts on a machine without the
// NVIDIA driver: Load then returns an error value (never a crash), and the
// caller falls back to the CPU.
//
// The versioned symbols (cuMemAlloc_v2, cuCtxSynchronize, …) are resolved
// by their real exported names, as cuda.h's macros would. All state lives
// in a Driver value; the package has no mutable globals.
//
// CUDA contexts are bound to OS threads while Go moves goroutines between
// threads, so every call that needs a context makes it current inside the
// same C call (cuCtxSetCurrent costs tens of nanoseconds, a launch several
// microseconds). Stream capture uses the relaxed mode for the same reason.
package driver
