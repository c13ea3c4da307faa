package driver

import (
	"errors"
	"fmt"
)

// Result is a CUresult code.
type Result int32

// Codes the package itself tests for.
const (
	Success           Result = 0
	ErrorNoDevice     Result = 100
	ErrorStubLibrary  Result = 34
	ErrorNotSupported Result = 801
)

// ErrNoCgo is returned by every entry point of a binary built without cgo.
var ErrNoCgo = errors.New("cuda: CUDA support needs cgo (this binary was built with CGO_ENABLED=0)")

// ErrNoDriver wraps the failure to load libcuda.so.1: the NVIDIA driver is
// not installed (or not visible to this process).
var ErrNoDriver = errors.New("cuda: NVIDIA driver library not available")

// ErrNoDevice is returned when the driver loads but reports no usable GPU.
var ErrNoDevice = errors.New("cuda: no CUDA device")

// Error is a failed driver call: the function, what it was asked to do,
// and the CUresult with its name and description.
type Error struct {
	Op     string // e.g. "cuMemAlloc_v2(4096 bytes)"
	Code   Result
	Name   string // CUDA_ERROR_…
	Detail string // the driver's description, when it gave one
}

func (e *Error) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("cuda: %s: %s (%d): %s", e.Op, e.Name, int(e.Code), e.Detail)
	}
	return fmt.Sprintf("cuda: %s: %s (%d)", e.Op, e.Name, int(e.Code))
}

// Is lets errors.Is(err, ErrNoDevice) match the driver's "no device" and
// "stub library" results, so callers need not know the codes.
func (e *Error) Is(target error) bool {
	return target == ErrNoDevice && (e.Code == ErrorNoDevice || e.Code == ErrorStubLibrary)
}

// Dim3 is a grid or block size.
type Dim3 struct{ X, Y, Z uint32 }

// D1 is a one-dimensional size.
func D1(x int) Dim3 { return Dim3{uint32(x), 1, 1} }

// Attribute is a CUdevice_attribute.
type Attribute int32

// The device attributes this project reads (values from cuda.h, checked by
// TestAttributesMatchHeader when the header is installed).
const (
	AttrMaxThreadsPerBlock       Attribute = 1
	AttrMaxSharedMemoryPerBlock  Attribute = 8
	AttrWarpSize                 Attribute = 10
	AttrClockRate                Attribute = 13 // kHz
	AttrMultiprocessorCount      Attribute = 16
	AttrMemoryClockRate          Attribute = 36 // kHz
	AttrGlobalMemoryBusWidth     Attribute = 37 // bits
	AttrL2CacheSize              Attribute = 38
	AttrComputeCapabilityMajor   Attribute = 75
	AttrComputeCapabilityMinor   Attribute = 76
	AttrMaxSharedMemoryOptin     Attribute = 97
	funcAttrMaxDynamicSharedSize int32     = 8 // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
)

// Flags for streams, events, pinned memory and capture.
const (
	StreamNonBlocking     = 1 // CU_STREAM_NON_BLOCKING
	EventDisableTiming    = 2 // CU_EVENT_DISABLE_TIMING
	HostAllocPortable     = 1 // CU_MEMHOSTALLOC_PORTABLE
	captureModeRelaxed    = 2 // CU_STREAM_CAPTURE_MODE_RELAXED
	maxLaunchArgs         = 64
	maxDeviceNameBytes    = 256
	launchArgBufferAlign  = 8
	bytesPerPointerOnHost = 8
)

// DeviceInfo is what Probe reports about one GPU.
type DeviceInfo struct {
	Ordinal      int
	Name         string
	Major, Minor int   // compute capability
	TotalMem     int64 // bytes
	SMs          int
	MemClockKHz  int
	BusWidthBits int
	SharedOptin  int // largest dynamic shared memory a block may opt in to
}

// BandwidthGBs is the theoretical memory bandwidth: two transfers per
// memory clock (DDR/HBM) over the bus width.
func (d DeviceInfo) BandwidthGBs() float64 {
	return 2 * float64(d.MemClockKHz) * 1e3 * float64(d.BusWidthBits) / 8 / 1e9
}

func (d DeviceInfo) String() string {
	return fmt.Sprintf("cuda:%d  %s  sm_%d%d  %.1f GiB  %d SMs  %.0f GB/s",
		d.Ordinal, d.Name, d.Major, d.Minor, float64(d.TotalMem)/(1<<30), d.SMs, d.BandwidthGBs())
}

// DevicePtr is a device address.
type DevicePtr uint64
