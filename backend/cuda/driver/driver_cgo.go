//go:build cgo

package driver

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <stddef.h>

// Our own declarations of the driver API types (cuda.h is not needed).
typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUevent_st *CUevent;
typedef struct CUgraph_st *CUgraph;
typedef struct CUgraphExec_st *CUgraphExec;

// The symbol table. Names in comments are the exported symbols resolved.
typedef struct {
	void *lib;
	CUresult (*init)(unsigned int);                                  // cuInit
	CUresult (*driverGetVersion)(int *);                             // cuDriverGetVersion
	CUresult (*getErrorName)(CUresult, const char **);               // cuGetErrorName
	CUresult (*getErrorString)(CUresult, const char **);             // cuGetErrorString
	CUresult (*deviceGetCount)(int *);                               // cuDeviceGetCount
	CUresult (*deviceGet)(CUdevice *, int);                          // cuDeviceGet
	CUresult (*deviceGetName)(char *, int, CUdevice);                // cuDeviceGetName
	CUresult (*deviceGetAttribute)(int *, int, CUdevice);            // cuDeviceGetAttribute
	CUresult (*deviceTotalMem)(size_t *, CUdevice);                  // cuDeviceTotalMem_v2
	CUresult (*primaryCtxRetain)(CUcontext *, CUdevice);             // cuDevicePrimaryCtxRetain
	CUresult (*primaryCtxRelease)(CUdevice);                         // cuDevicePrimaryCtxRelease_v2
	CUresult (*ctxSetCurrent)(CUcontext);                            // cuCtxSetCurrent
	CUresult (*ctxSynchronize)(void);                                // cuCtxSynchronize
	CUresult (*memGetInfo)(size_t *, size_t *);                      // cuMemGetInfo_v2
	CUresult (*moduleLoadData)(CUmodule *, const void *);            // cuModuleLoadData
	CUresult (*moduleUnload)(CUmodule);                              // cuModuleUnload
	CUresult (*moduleGetFunction)(CUfunction *, CUmodule, const char *); // cuModuleGetFunction
	CUresult (*funcSetAttribute)(CUfunction, int, int);              // cuFuncSetAttribute
	CUresult (*launchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
		unsigned, CUstream, void **, void **);                       // cuLaunchKernel
	CUresult (*memAlloc)(CUdeviceptr *, size_t);                     // cuMemAlloc_v2
	CUresult (*memFree)(CUdeviceptr);                                // cuMemFree_v2
	CUresult (*memHostAlloc)(void **, size_t, unsigned int);         // cuMemHostAlloc
	CUresult (*memFreeHost)(void *);                                 // cuMemFreeHost
	CUresult (*memcpyHtoD)(CUdeviceptr, const void *, size_t);       // cuMemcpyHtoD_v2
	CUresult (*memcpyDtoH)(void *, CUdeviceptr, size_t);             // cuMemcpyDtoH_v2
	CUresult (*memcpyHtoDAsync)(CUdeviceptr, const void *, size_t, CUstream); // cuMemcpyHtoDAsync_v2
	CUresult (*memcpyDtoHAsync)(void *, CUdeviceptr, size_t, CUstream);       // cuMemcpyDtoHAsync_v2
	CUresult (*memcpyDtoDAsync)(CUdeviceptr, CUdeviceptr, size_t, CUstream);  // cuMemcpyDtoDAsync_v2
	CUresult (*memsetD8Async)(CUdeviceptr, unsigned char, size_t, CUstream);  // cuMemsetD8Async
	CUresult (*streamCreate)(CUstream *, unsigned int);              // cuStreamCreate
	CUresult (*streamDestroy)(CUstream);                             // cuStreamDestroy_v2
	CUresult (*streamSynchronize)(CUstream);                         // cuStreamSynchronize
	CUresult (*eventCreate)(CUevent *, unsigned int);                // cuEventCreate
	CUresult (*eventDestroy)(CUevent);                               // cuEventDestroy_v2
	CUresult (*eventRecord)(CUevent, CUstream);                      // cuEventRecord
	CUresult (*eventSynchronize)(CUevent);                           // cuEventSynchronize
	CUresult (*eventElapsedTime)(float *, CUevent, CUevent);         // cuEventElapsedTime
	CUresult (*streamBeginCapture)(CUstream, int);                   // cuStreamBeginCapture_v2
	CUresult (*streamEndCapture)(CUstream, CUgraph *);               // cuStreamEndCapture
	CUresult (*graphInstantiate)(CUgraphExec *, CUgraph, unsigned long long); // cuGraphInstantiateWithFlags
	CUresult (*graphLaunch)(CUgraphExec, CUstream);                  // cuGraphLaunch
	CUresult (*graphExecDestroy)(CUgraphExec);                       // cuGraphExecDestroy
	CUresult (*graphDestroy)(CUgraph);                               // cuGraphDestroy
} cu_api;

// cu_open loads the library and resolves every symbol. On failure it
// returns NULL with a message in err (static strings or dlerror's).
static cu_api *cu_open(const char *path, const char **err, const char **missing) {
	*err = NULL;
	*missing = NULL;
	void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		*err = dlerror();
		return NULL;
	}
	cu_api *a = calloc(1, sizeof(cu_api));
	if (!a) {
		*err = "out of memory";
		dlclose(lib);
		return NULL;
	}
	a->lib = lib;
#define SYM(field, name) \
	if (!(*(void **)(&a->field) = dlsym(lib, name))) { *missing = name; free(a); dlclose(lib); return NULL; }
	SYM(init, "cuInit");
	SYM(driverGetVersion, "cuDriverGetVersion");
	SYM(getErrorName, "cuGetErrorName");
	SYM(getErrorString, "cuGetErrorString");
	SYM(deviceGetCount, "cuDeviceGetCount");
	SYM(deviceGet, "cuDeviceGet");
	SYM(deviceGetName, "cuDeviceGetName");
	SYM(deviceGetAttribute, "cuDeviceGetAttribute");
	SYM(deviceTotalMem, "cuDeviceTotalMem_v2");
	SYM(primaryCtxRetain, "cuDevicePrimaryCtxRetain");
	SYM(primaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
	SYM(ctxSetCurrent, "cuCtxSetCurrent");
	SYM(ctxSynchronize, "cuCtxSynchronize");
	SYM(memGetInfo, "cuMemGetInfo_v2");
	SYM(moduleLoadData, "cuModuleLoadData");
	SYM(moduleUnload, "cuModuleUnload");
	SYM(moduleGetFunction, "cuModuleGetFunction");
	SYM(funcSetAttribute, "cuFuncSetAttribute");
	SYM(launchKernel, "cuLaunchKernel");
	SYM(memAlloc, "cuMemAlloc_v2");
	SYM(memFree, "cuMemFree_v2");
	SYM(memHostAlloc, "cuMemHostAlloc");
	SYM(memFreeHost, "cuMemFreeHost");
	SYM(memcpyHtoD, "cuMemcpyHtoD_v2");
	SYM(memcpyDtoH, "cuMemcpyDtoH_v2");
	SYM(memcpyHtoDAsync, "cuMemcpyHtoDAsync_v2");
	SYM(memcpyDtoHAsync, "cuMemcpyDtoHAsync_v2");
	SYM(memcpyDtoDAsync, "cuMemcpyDtoDAsync_v2");
	SYM(memsetD8Async, "cuMemsetD8Async");
	SYM(streamCreate, "cuStreamCreate");
	SYM(streamDestroy, "cuStreamDestroy_v2");
	SYM(streamSynchronize, "cuStreamSynchronize");
	SYM(eventCreate, "cuEventCreate");
	SYM(eventDestroy, "cuEventDestroy_v2");
	SYM(eventRecord, "cuEventRecord");
	SYM(eventSynchronize, "cuEventSynchronize");
	SYM(eventElapsedTime, "cuEventElapsedTime");
	SYM(streamBeginCapture, "cuStreamBeginCapture_v2");
	SYM(streamEndCapture, "cuStreamEndCapture");
	SYM(graphInstantiate, "cuGraphInstantiateWithFlags");
	SYM(graphLaunch, "cuGraphLaunch");
	SYM(graphExecDestroy, "cuGraphExecDestroy");
	SYM(graphDestroy, "cuGraphDestroy");
#undef SYM
	return a;
}

// Context-bound calls: the context is made current on this OS thread in
// the same C call (see the package comment).
#define IN_CTX(a, ctx, call) ({ CUresult r_ = (a)->ctxSetCurrent(ctx); r_ == 0 ? (call) : r_; })

static CUresult cu_init(cu_api *a) { return a->init(0); }
static CUresult cu_version(cu_api *a, int *v) { return a->driverGetVersion(v); }
static CUresult cu_count(cu_api *a, int *n) { return a->deviceGetCount(n); }
static CUresult cu_device(cu_api *a, CUdevice *d, int i) { return a->deviceGet(d, i); }
static CUresult cu_retain(cu_api *a, CUcontext *c, CUdevice d) { return a->primaryCtxRetain(c, d); }
static CUresult cu_release(cu_api *a, CUdevice d) { return a->primaryCtxRelease(d); }
static const char *cu_err_name(cu_api *a, CUresult r) { const char *s = NULL; return a->getErrorName(r, &s) == 0 ? s : NULL; }
static const char *cu_err_string(cu_api *a, CUresult r) { const char *s = NULL; return a->getErrorString(r, &s) == 0 ? s : NULL; }
static CUresult cu_name(cu_api *a, CUdevice d, char *buf, int n) { return a->deviceGetName(buf, n, d); }
static CUresult cu_attr(cu_api *a, CUdevice d, int attr, int *v) { return a->deviceGetAttribute(v, attr, d); }
static CUresult cu_total_mem(cu_api *a, CUdevice d, size_t *v) { return a->deviceTotalMem(v, d); }
static CUresult cu_ctx_sync(cu_api *a, CUcontext c) { return IN_CTX(a, c, a->ctxSynchronize()); }
static CUresult cu_mem_info(cu_api *a, CUcontext c, size_t *fr, size_t *tot) { return IN_CTX(a, c, a->memGetInfo(fr, tot)); }
static CUresult cu_module_load(cu_api *a, CUcontext c, CUmodule *m, const void *img) { return IN_CTX(a, c, a->moduleLoadData(m, img)); }
static CUresult cu_module_unload(cu_api *a, CUcontext c, CUmodule m) { return IN_CTX(a, c, a->moduleUnload(m)); }
static CUresult cu_module_fn(cu_api *a, CUcontext c, CUfunction *f, CUmodule m, const char *name) { return IN_CTX(a, c, a->moduleGetFunction(f, m, name)); }
static CUresult cu_fn_attr(cu_api *a, CUcontext c, CUfunction f, int attr, int v) { return IN_CTX(a, c, a->funcSetAttribute(f, attr, v)); }
static CUresult cu_mem_alloc(cu_api *a, CUcontext c, CUdeviceptr *p, size_t n) { return IN_CTX(a, c, a->memAlloc(p, n)); }
static CUresult cu_mem_free(cu_api *a, CUcontext c, CUdeviceptr p) { return IN_CTX(a, c, a->memFree(p)); }
static CUresult cu_host_alloc(cu_api *a, CUcontext c, void **p, size_t n, unsigned fl) { return IN_CTX(a, c, a->memHostAlloc(p, n, fl)); }
static CUresult cu_host_free(cu_api *a, CUcontext c, void *p) { return IN_CTX(a, c, a->memFreeHost(p)); }
static CUresult cu_htod(cu_api *a, CUcontext c, CUdeviceptr d, const void *s, size_t n) { return IN_CTX(a, c, a->memcpyHtoD(d, s, n)); }
static CUresult cu_dtoh(cu_api *a, CUcontext c, void *d, CUdeviceptr s, size_t n) { return IN_CTX(a, c, a->memcpyDtoH(d, s, n)); }
static CUresult cu_htod_async(cu_api *a, CUcontext c, CUdeviceptr d, const void *s, size_t n, CUstream st) { return IN_CTX(a, c, a->memcpyHtoDAsync(d, s, n, st)); }
static CUresult cu_dtoh_async(cu_api *a, CUcontext c, void *d, CUdeviceptr s, size_t n, CUstream st) { return IN_CTX(a, c, a->memcpyDtoHAsync(d, s, n, st)); }
static CUresult cu_dtod_async(cu_api *a, CUcontext c, CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st) { return IN_CTX(a, c, a->memcpyDtoDAsync(d, s, n, st)); }
static CUresult cu_memset_async(cu_api *a, CUcontext c, CUdeviceptr d, unsigned char v, size_t n, CUstream st) { return IN_CTX(a, c, a->memsetD8Async(d, v, n, st)); }
static CUresult cu_stream_create(cu_api *a, CUcontext c, CUstream *s, unsigned fl) { return IN_CTX(a, c, a->streamCreate(s, fl)); }
static CUresult cu_stream_destroy(cu_api *a, CUcontext c, CUstream s) { return IN_CTX(a, c, a->streamDestroy(s)); }
static CUresult cu_stream_sync(cu_api *a, CUcontext c, CUstream s) { return IN_CTX(a, c, a->streamSynchronize(s)); }
static CUresult cu_event_create(cu_api *a, CUcontext c, CUevent *e, unsigned fl) { return IN_CTX(a, c, a->eventCreate(e, fl)); }
static CUresult cu_event_destroy(cu_api *a, CUcontext c, CUevent e) { return IN_CTX(a, c, a->eventDestroy(e)); }
static CUresult cu_event_record(cu_api *a, CUcontext c, CUevent e, CUstream s) { return IN_CTX(a, c, a->eventRecord(e, s)); }
static CUresult cu_event_sync(cu_api *a, CUcontext c, CUevent e) { return IN_CTX(a, c, a->eventSynchronize(e)); }
static CUresult cu_event_elapsed(cu_api *a, CUcontext c, float *ms, CUevent s, CUevent e) { return IN_CTX(a, c, a->eventElapsedTime(ms, s, e)); }
static CUresult cu_begin_capture(cu_api *a, CUcontext c, CUstream s, int mode) { return IN_CTX(a, c, a->streamBeginCapture(s, mode)); }
static CUresult cu_end_capture(cu_api *a, CUcontext c, CUstream s, CUgraph *g) { return IN_CTX(a, c, a->streamEndCapture(s, g)); }
static CUresult cu_graph_inst(cu_api *a, CUcontext c, CUgraphExec *e, CUgraph g) { return IN_CTX(a, c, a->graphInstantiate(e, g, 0)); }
static CUresult cu_graph_launch(cu_api *a, CUcontext c, CUgraphExec e, CUstream s) { return IN_CTX(a, c, a->graphLaunch(e, s)); }
static CUresult cu_graph_exec_destroy(cu_api *a, CUcontext c, CUgraphExec e) { return IN_CTX(a, c, a->graphExecDestroy(e)); }
static CUresult cu_graph_destroy(cu_api *a, CUcontext c, CUgraph g) { return IN_CTX(a, c, a->graphDestroy(g)); }

// cu_launch builds the void*[] cuLaunchKernel wants from a packed buffer
// and offsets (Go memory holding no Go pointers, valid for this call;
// cuLaunchKernel copies the values before it returns).
static CUresult cu_launch(cu_api *a, CUcontext c, CUfunction f,
		unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
		unsigned shared, CUstream s, unsigned char *buf, const int *offs, int n) {
	void *params[64];
	if (n > 64) return 1; // CUDA_ERROR_INVALID_VALUE; Args refuses more anyway
	for (int i = 0; i < n; i++) params[i] = buf + offs[i];
	return IN_CTX(a, c, a->launchKernel(f, gx, gy, gz, bx, by, bz, shared, s, n ? params : NULL, NULL));
}
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"
)

// Driver is a loaded libcuda: the dlopen handle and its symbol table. The
// library stays loaded for the life of the process (the driver does not
// support being unloaded while contexts exist).
type Driver struct {
	api *C.cu_api
}

// LibraryName is the soname the driver is loaded by.
const LibraryName = "libcuda.so.1"

// Load opens libcuda.so.1 and initialises the driver. It returns an error
// wrapping ErrNoDriver when the library is missing or incomplete, and one
// matching ErrNoDevice when the driver finds no GPU.
func Load() (*Driver, error) { return LoadFrom(LibraryName) }

// LoadFrom is Load with another library path (tests use a missing one).
func LoadFrom(path string) (*Driver, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var cerr, missing *C.char
	api := C.cu_open(cpath, &cerr, &missing)
	if api == nil {
		if missing != nil {
			return nil, fmt.Errorf("%w: %s has no symbol %s (driver too old: CUDA 11.4 or later is needed)", ErrNoDriver, path, C.GoString(missing))
		}
		msg := "unknown error"
		if cerr != nil {
			msg = C.GoString(cerr)
		}
		return nil, fmt.Errorf("%w: dlopen %s: %s", ErrNoDriver, path, msg)
	}
	d := &Driver{api: api}
	if err := d.err("cuInit(0)", C.cu_init(api)); err != nil {
		return nil, err
	}
	return d, nil
}

// err turns a CUresult into an *Error named by the driver (or by the
// package's table when the driver has no name for it).
func (d *Driver) err(op string, r C.CUresult) error {
	if r == 0 {
		return nil
	}
	e := &Error{Op: op, Code: Result(r), Name: ResultName(Result(r))}
	if d != nil && d.api != nil {
		if s := C.cu_err_name(d.api, r); s != nil {
			e.Name = C.GoString(s)
		}
		if s := C.cu_err_string(d.api, r); s != nil {
			e.Detail = C.GoString(s)
		}
	}
	return e
}

// Version is the driver's CUDA version as major·1000 + minor·10.
func (d *Driver) Version() (int, error) {
	var v C.int
	if err := d.err("cuDriverGetVersion", C.cu_version(d.api, &v)); err != nil {
		return 0, err
	}
	return int(v), nil
}

// DeviceCount is the number of GPUs the driver sees.
func (d *Driver) DeviceCount() (int, error) {
	var n C.int
	if err := d.err("cuDeviceGetCount", C.cu_count(d.api, &n)); err != nil {
		return 0, err
	}
	return int(n), nil
}

// Device is one GPU.
type Device struct {
	d       *Driver
	h       C.CUdevice
	Ordinal int
}

// Device returns GPU number i.
func (d *Driver) Device(i int) (Device, error) {
	n, err := d.DeviceCount()
	if err != nil {
		return Device{}, err
	}
	if n == 0 {
		return Device{}, fmt.Errorf("%w: the driver reports 0 devices", ErrNoDevice)
	}
	if i < 0 || i >= n {
		return Device{}, fmt.Errorf("cuda: device %d does not exist (%d found)", i, n)
	}
	var h C.CUdevice
	if err := d.err(fmt.Sprintf("cuDeviceGet(%d)", i), C.cu_device(d.api, &h, C.int(i))); err != nil {
		return Device{}, err
	}
	return Device{d: d, h: h, Ordinal: i}, nil
}

// Name is the device's marketing name.
func (v Device) Name() (string, error) {
	buf := make([]byte, maxDeviceNameBytes)
	if err := v.d.err("cuDeviceGetName", C.cu_name(v.d.api, v.h, (*C.char)(unsafe.Pointer(&buf[0])), C.int(len(buf)))); err != nil {
		return "", err
	}
	for i, b := range buf {
		if b == 0 {
			return string(buf[:i]), nil
		}
	}
	return string(buf), nil
}

// Attribute reads one device attribute.
func (v Device) Attribute(a Attribute) (int, error) {
	var x C.int
	if err := v.d.err(fmt.Sprintf("cuDeviceGetAttribute(%d)", int(a)), C.cu_attr(v.d.api, v.h, C.int(a), &x)); err != nil {
		return 0, err
	}
	return int(x), nil
}

// TotalMem is the device memory in bytes.
func (v Device) TotalMem() (int64, error) {
	var n C.size_t
	if err := v.d.err("cuDeviceTotalMem_v2", C.cu_total_mem(v.d.api, v.h, &n)); err != nil {
		return 0, err
	}
	return int64(n), nil
}

// Info gathers the device's name, compute capability, memory and the
// numbers behind its bandwidth.
func (v Device) Info() (DeviceInfo, error) {
	info := DeviceInfo{Ordinal: v.Ordinal}
	var err error
	if info.Name, err = v.Name(); err != nil {
		return info, err
	}
	if info.TotalMem, err = v.TotalMem(); err != nil {
		return info, err
	}
	for _, f := range []struct {
		a   Attribute
		dst *int
	}{
		{AttrComputeCapabilityMajor, &info.Major}, {AttrComputeCapabilityMinor, &info.Minor},
		{AttrMultiprocessorCount, &info.SMs}, {AttrMemoryClockRate, &info.MemClockKHz},
		{AttrGlobalMemoryBusWidth, &info.BusWidthBits}, {AttrMaxSharedMemoryOptin, &info.SharedOptin},
	} {
		if *f.dst, err = v.Attribute(f.a); err != nil {
			return info, err
		}
	}
	return info, nil
}

// Probe loads the driver and describes every GPU. The error says why there
// are none (no library, stub library, no device).
func Probe() (*Driver, []DeviceInfo, error) {
	d, err := Load()
	if err != nil {
		return nil, nil, err
	}
	n, err := d.DeviceCount()
	if err != nil {
		return nil, nil, err
	}
	if n == 0 {
		return nil, nil, fmt.Errorf("%w: the driver reports 0 devices", ErrNoDevice)
	}
	infos := make([]DeviceInfo, 0, n)
	for i := range n {
		dev, err := d.Device(i)
		if err != nil {
			return nil, nil, err
		}
		info, err := dev.Info()
		if err != nil {
			return nil, nil, fmt.Errorf("cuda: device %d: %w", i, err)
		}
		infos = append(infos, info)
	}
	return d, infos, nil
}

// Context is a device's primary context, retained.
type Context struct {
	d   *Driver
	dev Device
	h   C.CUcontext
}

// Retain retains the device's primary context (the one the runtime API
// and other libraries share).
func (v Device) Retain() (*Context, error) {
	var h C.CUcontext
	if err := v.d.err("cuDevicePrimaryCtxRetain", C.cu_retain(v.d.api, &h, v.h)); err != nil {
		return nil, err
	}
	return &Context{d: v.d, dev: v, h: h}, nil
}

// Release releases the primary context; nothing made in it may be used
// afterwards.
func (c *Context) Release() error {
	return c.d.err("cuDevicePrimaryCtxRelease_v2", C.cu_release(c.d.api, c.dev.h))
}

// Device is the context's device.
func (c *Context) Device() Device { return c.dev }

// Synchronize waits for all work in the context.
func (c *Context) Synchronize() error {
	return c.d.err("cuCtxSynchronize", C.cu_ctx_sync(c.d.api, c.h))
}

// MemInfo returns free and total device memory.
func (c *Context) MemInfo() (free, total int64, err error) {
	var f, t C.size_t
	if err := c.d.err("cuMemGetInfo_v2", C.cu_mem_info(c.d.api, c.h, &f, &t)); err != nil {
		return 0, 0, err
	}
	return int64(f), int64(t), nil
}

// Alloc allocates n bytes of device memory.
func (c *Context) Alloc(n int64) (DevicePtr, error) {
	if n <= 0 {
		return 0, fmt.Errorf("cuda: cuMemAlloc_v2: %d bytes", n)
	}
	var p C.CUdeviceptr
	if err := c.d.err(fmt.Sprintf("cuMemAlloc_v2(%d bytes)", n), C.cu_mem_alloc(c.d.api, c.h, &p, C.size_t(n))); err != nil {
		return 0, err
	}
	return DevicePtr(p), nil
}

// Free frees device memory from Alloc.
func (c *Context) Free(p DevicePtr) error {
	if p == 0 {
		return nil
	}
	return c.d.err("cuMemFree_v2", C.cu_mem_free(c.d.api, c.h, C.CUdeviceptr(p)))
}

// CopyHtoD copies host bytes to the device, synchronously.
func (c *Context) CopyHtoD(dst DevicePtr, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	return c.d.err(fmt.Sprintf("cuMemcpyHtoD_v2(%d bytes)", len(src)),
		C.cu_htod(c.d.api, c.h, C.CUdeviceptr(dst), unsafe.Pointer(&src[0]), C.size_t(len(src))))
}

// CopyDtoH copies device bytes to the host, synchronously (after all
// prior work on the legacy stream; streams created here are blocking).
func (c *Context) CopyDtoH(dst []byte, src DevicePtr) error {
	if len(dst) == 0 {
		return nil
	}
	return c.d.err(fmt.Sprintf("cuMemcpyDtoH_v2(%d bytes)", len(dst)),
		C.cu_dtoh(c.d.api, c.h, unsafe.Pointer(&dst[0]), C.CUdeviceptr(src), C.size_t(len(dst))))
}

// HostMem is pinned (page-locked) host memory, the only host memory async
// copies may use: Go memory may move or be freed while a copy runs.
type HostMem struct {
	c *Context
	p unsafe.Pointer
	n int
}

// HostAlloc allocates n bytes of pinned host memory.
func (c *Context) HostAlloc(n int) (*HostMem, error) {
	if n <= 0 {
		return nil, fmt.Errorf("cuda: cuMemHostAlloc: %d bytes", n)
	}
	var p unsafe.Pointer
	if err := c.d.err(fmt.Sprintf("cuMemHostAlloc(%d bytes)", n), C.cu_host_alloc(c.d.api, c.h, &p, C.size_t(n), C.uint(HostAllocPortable))); err != nil {
		return nil, err
	}
	return &HostMem{c: c, p: p, n: n}, nil
}

// Bytes is the memory as a Go slice; it is valid until Free.
func (h *HostMem) Bytes() []byte { return unsafe.Slice((*byte)(h.p), h.n) }

// Free releases the pinned memory.
func (h *HostMem) Free() error {
	if h.p == nil {
		return nil
	}
	err := h.c.d.err("cuMemFreeHost", C.cu_host_free(h.c.d.api, h.c.h, h.p))
	h.p, h.n = nil, 0
	return err
}

func (h *HostMem) at(off, n int) (unsafe.Pointer, error) {
	if off < 0 || n < 0 || off+n > h.n {
		return nil, fmt.Errorf("cuda: pinned range [%d, %d) outside %d bytes", off, off+n, h.n)
	}
	return unsafe.Add(h.p, off), nil
}

// Stream is a CUDA stream.
type Stream struct {
	c *Context
	h C.CUstream
}

// NewStream creates a stream that does not synchronise with the legacy
// default stream.
func (c *Context) NewStream() (*Stream, error) {
	var h C.CUstream
	if err := c.d.err("cuStreamCreate", C.cu_stream_create(c.d.api, c.h, &h, C.uint(StreamNonBlocking))); err != nil {
		return nil, err
	}
	return &Stream{c: c, h: h}, nil
}

// Destroy destroys the stream once its work is done.
func (s *Stream) Destroy() error {
	return s.c.d.err("cuStreamDestroy_v2", C.cu_stream_destroy(s.c.d.api, s.c.h, s.h))
}

// Synchronize waits for the stream's work.
func (s *Stream) Synchronize() error {
	return s.c.d.err("cuStreamSynchronize", C.cu_stream_sync(s.c.d.api, s.c.h, s.h))
}

// CopyHtoD queues a copy of n bytes at off in pinned memory to dst.
func (s *Stream) CopyHtoD(dst DevicePtr, src *HostMem, off, n int) error {
	p, err := src.at(off, n)
	if err != nil || n == 0 {
		return err
	}
	return s.c.d.err(fmt.Sprintf("cuMemcpyHtoDAsync_v2(%d bytes)", n),
		C.cu_htod_async(s.c.d.api, s.c.h, C.CUdeviceptr(dst), p, C.size_t(n), s.h))
}

// CopyDtoH queues a copy of n bytes from src to off in pinned memory.
func (s *Stream) CopyDtoH(dst *HostMem, off int, src DevicePtr, n int) error {
	p, err := dst.at(off, n)
	if err != nil || n == 0 {
		return err
	}
	return s.c.d.err(fmt.Sprintf("cuMemcpyDtoHAsync_v2(%d bytes)", n),
		C.cu_dtoh_async(s.c.d.api, s.c.h, p, C.CUdeviceptr(src), C.size_t(n), s.h))
}

// CopyDtoD queues a device-to-device copy.
func (s *Stream) CopyDtoD(dst, src DevicePtr, n int) error {
	if n == 0 {
		return nil
	}
	return s.c.d.err(fmt.Sprintf("cuMemcpyDtoDAsync_v2(%d bytes)", n),
		C.cu_dtod_async(s.c.d.api, s.c.h, C.CUdeviceptr(dst), C.CUdeviceptr(src), C.size_t(n), s.h))
}

// Memset queues setting n bytes at dst to v.
func (s *Stream) Memset(dst DevicePtr, v byte, n int) error {
	if n == 0 {
		return nil
	}
	return s.c.d.err(fmt.Sprintf("cuMemsetD8Async(%d bytes)", n),
		C.cu_memset_async(s.c.d.api, s.c.h, C.CUdeviceptr(dst), C.uchar(v), C.size_t(n), s.h))
}

// Module is a loaded fatbin, cubin or PTX image.
type Module struct {
	c *Context
	h C.CUmodule
}

// LoadModule loads an image; the driver picks the SASS for this GPU or
// JIT-compiles the PTX.
func (c *Context) LoadModule(image []byte) (*Module, error) {
	if len(image) == 0 {
		return nil, errors.New("cuda: cuModuleLoadData: empty image")
	}
	// The driver reads the image during the call only; C memory keeps the
	// cgo pointer rules simple for a multi-megabyte image.
	cimg := C.CBytes(image)
	defer C.free(cimg)
	var h C.CUmodule
	if err := c.d.err(fmt.Sprintf("cuModuleLoadData(%d-byte image)", len(image)), C.cu_module_load(c.d.api, c.h, &h, cimg)); err != nil {
		return nil, err
	}
	return &Module{c: c, h: h}, nil
}

// Unload unloads the module.
func (m *Module) Unload() error {
	return m.c.d.err("cuModuleUnload", C.cu_module_unload(m.c.d.api, m.c.h, m.h))
}

// Function is a kernel in a module.
type Function struct {
	c    *Context
	h    C.CUfunction
	Name string
}

// Function looks up a kernel by its (extern "C") name.
func (m *Module) Function(name string) (*Function, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var h C.CUfunction
	if err := m.c.d.err(fmt.Sprintf("cuModuleGetFunction(%q)", name), C.cu_module_fn(m.c.d.api, m.c.h, &h, m.h, cname)); err != nil {
		return nil, err
	}
	return &Function{c: m.c, h: h, Name: name}, nil
}

// SetMaxDynamicShared lets launches use more than 48 KiB of dynamic shared
// memory (cuFuncSetAttribute).
func (f *Function) SetMaxDynamicShared(bytes int) error {
	return f.c.d.err(fmt.Sprintf("cuFuncSetAttribute(%s, max dynamic shared %d)", f.Name, bytes),
		C.cu_fn_attr(f.c.d.api, f.c.h, f.h, C.int(funcAttrMaxDynamicSharedSize), C.int(bytes)))
}

// Launch queues the kernel on the stream (nil: the legacy stream).
func (f *Function) Launch(grid, block Dim3, shared int, s *Stream, args *Args) error {
	if err := args.Err(); err != nil {
		return fmt.Errorf("cuda: launch %s: %w", f.Name, err)
	}
	buf, offs := args.Bytes()
	var bp *C.uchar
	var op *C.int
	if len(offs) > 0 {
		bp, op = (*C.uchar)(unsafe.Pointer(&buf[0])), (*C.int)(unsafe.Pointer(&offs[0]))
	}
	var sh C.CUstream
	if s != nil {
		sh = s.h
	}
	r := C.cu_launch(f.c.d.api, f.c.h, f.h, C.uint(grid.X), C.uint(grid.Y), C.uint(grid.Z),
		C.uint(block.X), C.uint(block.Y), C.uint(block.Z), C.uint(shared), sh, bp, op, C.int(len(offs)))
	runtime.KeepAlive(args)
	if r != 0 {
		return f.c.d.err(fmt.Sprintf("cuLaunchKernel(%s, grid %v, block %v, %d shared bytes)", f.Name, grid, block, shared), r)
	}
	return nil
}

// Event is a CUDA event.
type Event struct {
	c *Context
	h C.CUevent
}

// NewEvent creates an event; timing events are needed for ElapsedMs.
func (c *Context) NewEvent(timing bool) (*Event, error) {
	fl := C.uint(0)
	if !timing {
		fl = C.uint(EventDisableTiming)
	}
	var h C.CUevent
	if err := c.d.err("cuEventCreate", C.cu_event_create(c.d.api, c.h, &h, fl)); err != nil {
		return nil, err
	}
	return &Event{c: c, h: h}, nil
}

// Record queues the event on the stream.
func (e *Event) Record(s *Stream) error {
	var sh C.CUstream
	if s != nil {
		sh = s.h
	}
	return e.c.d.err("cuEventRecord", C.cu_event_record(e.c.d.api, e.c.h, e.h, sh))
}

// Synchronize waits for the event.
func (e *Event) Synchronize() error {
	return e.c.d.err("cuEventSynchronize", C.cu_event_sync(e.c.d.api, e.c.h, e.h))
}

// ElapsedMs is the time between two recorded events in milliseconds.
func (e *Event) ElapsedMs(start *Event) (float32, error) {
	var ms C.float
	if err := e.c.d.err("cuEventElapsedTime", C.cu_event_elapsed(e.c.d.api, e.c.h, &ms, start.h, e.h)); err != nil {
		return 0, err
	}
	return float32(ms), nil
}

// Destroy destroys the event.
func (e *Event) Destroy() error {
	return e.c.d.err("cuEventDestroy_v2", C.cu_event_destroy(e.c.d.api, e.c.h, e.h))
}

// BeginCapture starts recording the stream's work into a graph instead of
// running it (relaxed mode: see the package comment).
func (s *Stream) BeginCapture() error {
	return s.c.d.err("cuStreamBeginCapture_v2", C.cu_begin_capture(s.c.d.api, s.c.h, s.h, C.int(captureModeRelaxed)))
}

// Graph is a captured graph.
type Graph struct {
	c *Context
	h C.CUgraph
}

// EndCapture ends the capture and returns the graph.
func (s *Stream) EndCapture() (*Graph, error) {
	var g C.CUgraph
	if err := s.c.d.err("cuStreamEndCapture", C.cu_end_capture(s.c.d.api, s.c.h, s.h, &g)); err != nil {
		return nil, err
	}
	return &Graph{c: s.c, h: g}, nil
}

// Destroy destroys the graph (an instantiated GraphExec stays valid).
func (g *Graph) Destroy() error {
	return g.c.d.err("cuGraphDestroy", C.cu_graph_destroy(g.c.d.api, g.c.h, g.h))
}

// GraphExec is an instantiated graph, launched as one unit.
type GraphExec struct {
	c *Context
	h C.CUgraphExec
}

// Instantiate prepares the graph for launching.
func (g *Graph) Instantiate() (*GraphExec, error) {
	var e C.CUgraphExec
	if err := g.c.d.err("cuGraphInstantiateWithFlags", C.cu_graph_inst(g.c.d.api, g.c.h, &e, g.h)); err != nil {
		return nil, err
	}
	return &GraphExec{c: g.c, h: e}, nil
}

// Launch queues the whole graph on the stream.
func (e *GraphExec) Launch(s *Stream) error {
	return e.c.d.err("cuGraphLaunch", C.cu_graph_launch(e.c.d.api, e.c.h, e.h, s.h))
}

// Destroy destroys the executable graph.
func (e *GraphExec) Destroy() error {
	return e.c.d.err("cuGraphExecDestroy", C.cu_graph_exec_destroy(e.c.d.api, e.c.h, e.h))
}
