//go:build !cgo

package driver

// Without cgo the API is the same, and every entry point reports ErrNoCgo,
// so callers compile unchanged and fall back to the CPU.

// Driver is a loaded libcuda (never, without cgo).
type Driver struct{}

// LibraryName is the soname the driver is loaded by.
const LibraryName = "libcuda.so.1"

// Device is one GPU.
type Device struct{ Ordinal int }

// Context is a primary context.
type Context struct{}

// HostMem is pinned host memory.
type HostMem struct{}

// Stream is a CUDA stream.
type Stream struct{}

// Module is a loaded image.
type Module struct{}

// Function is a kernel.
type Function struct{ Name string }

// Event is a CUDA event.
type Event struct{}

// Graph is a captured graph.
type Graph struct{}

// GraphExec is an instantiated graph.
type GraphExec struct{}

// LoadFrom reports ErrNoCgo.
func LoadFrom(path string) (*Driver, error) {
	return nil, ErrNoCgo
}

// Version reports ErrNoCgo.
func (d *Driver) Version() (int, error) {
	return 0, ErrNoCgo
}

// DeviceCount reports ErrNoCgo.
func (d *Driver) DeviceCount() (int, error) {
	return 0, ErrNoCgo
}

// Device reports ErrNoCgo.
func (d *Driver) Device(i int) (Device, error) {
	return Device{}, ErrNoCgo
}

// Name reports ErrNoCgo.
func (v Device) Name() (string, error) {
	return "", ErrNoCgo
}

// Attribute reports ErrNoCgo.
func (v Device) Attribute(a Attribute) (int, error) {
	return 0, ErrNoCgo
}

// TotalMem reports ErrNoCgo.
func (v Device) TotalMem() (int64, error) {
	return 0, ErrNoCgo
}

// Info reports ErrNoCgo.
func (v Device) Info() (DeviceInfo, error) {
	return DeviceInfo{}, ErrNoCgo
}

// Probe reports ErrNoCgo.
func Probe() (*Driver, []DeviceInfo, error) {
	return nil, nil, ErrNoCgo
}

// Retain reports ErrNoCgo.
func (v Device) Retain() (*Context, error) {
	return nil, ErrNoCgo
}

// Release reports ErrNoCgo.
func (c *Context) Release() error {
	return ErrNoCgo
}

// Synchronize reports ErrNoCgo.
func (c *Context) Synchronize() error {
	return ErrNoCgo
}

// MemInfo reports ErrNoCgo.
func (c *Context) MemInfo() (free, total int64, err error) {
	return 0, 0, ErrNoCgo
}

// Alloc reports ErrNoCgo.
func (c *Context) Alloc(n int64) (DevicePtr, error) {
	return 0, ErrNoCgo
}

// Free reports ErrNoCgo.
func (c *Context) Free(p DevicePtr) error {
	return ErrNoCgo
}

// CopyHtoD reports ErrNoCgo.
func (c *Context) CopyHtoD(dst DevicePtr, src []byte) error {
	return ErrNoCgo
}

// CopyDtoH reports ErrNoCgo.
func (c *Context) CopyDtoH(dst []byte, src DevicePtr) error {
	return ErrNoCgo
}

// HostAlloc reports ErrNoCgo.
func (c *Context) HostAlloc(n int) (*HostMem, error) {
	return nil, ErrNoCgo
}

// Free reports ErrNoCgo.
func (h *HostMem) Free() error {
	return ErrNoCgo
}

// NewStream reports ErrNoCgo.
func (c *Context) NewStream() (*Stream, error) {
	return nil, ErrNoCgo
}

// Destroy reports ErrNoCgo.
func (s *Stream) Destroy() error {
	return ErrNoCgo
}

// Synchronize reports ErrNoCgo.
func (s *Stream) Synchronize() error {
	return ErrNoCgo
}

// CopyHtoD reports ErrNoCgo.
func (s *Stream) CopyHtoD(dst DevicePtr, src *HostMem, off, n int) error {
	return ErrNoCgo
}

// CopyDtoH reports ErrNoCgo.
func (s *Stream) CopyDtoH(dst *HostMem, off int, src DevicePtr, n int) error {
	return ErrNoCgo
}

// CopyDtoD reports ErrNoCgo.
func (s *Stream) CopyDtoD(dst, src DevicePtr, n int) error {
	return ErrNoCgo
}

// Memset reports ErrNoCgo.
func (s *Stream) Memset(dst DevicePtr, v byte, n int) error {
	return ErrNoCgo
}

// LoadModule reports ErrNoCgo.
func (c *Context) LoadModule(image []byte) (*Module, error) {
	return nil, ErrNoCgo
}

// Unload reports ErrNoCgo.
func (m *Module) Unload() error {
	return ErrNoCgo
}

// Function reports ErrNoCgo.
func (m *Module) Function(name string) (*Function, error) {
	return nil, ErrNoCgo
}

// SetMaxDynamicShared reports ErrNoCgo.
func (f *Function) SetMaxDynamicShared(bytes int) error {
	return ErrNoCgo
}

// Launch reports ErrNoCgo.
func (f *Function) Launch(grid, block Dim3, shared int, s *Stream, args *Args) error {
	return ErrNoCgo
}

// NewEvent reports ErrNoCgo.
func (c *Context) NewEvent(timing bool) (*Event, error) {
	return nil, ErrNoCgo
}

// Record reports ErrNoCgo.
func (e *Event) Record(s *Stream) error {
	return ErrNoCgo
}

// Synchronize reports ErrNoCgo.
func (e *Event) Synchronize() error {
	return ErrNoCgo
}

// ElapsedMs reports ErrNoCgo.
func (e *Event) ElapsedMs(start *Event) (float32, error) {
	return 0, ErrNoCgo
}

// Destroy reports ErrNoCgo.
func (e *Event) Destroy() error {
	return ErrNoCgo
}

// BeginCapture reports ErrNoCgo.
func (s *Stream) BeginCapture() error {
	return ErrNoCgo
}

// EndCapture reports ErrNoCgo.
func (s *Stream) EndCapture() (*Graph, error) {
	return nil, ErrNoCgo
}

// Destroy reports ErrNoCgo.
func (g *Graph) Destroy() error {
	return ErrNoCgo
}

// Instantiate reports ErrNoCgo.
func (g *Graph) Instantiate() (*GraphExec, error) {
	return nil, ErrNoCgo
}

// Launch reports ErrNoCgo.
func (e *GraphExec) Launch(s *Stream) error {
	return ErrNoCgo
}

// Destroy reports ErrNoCgo.
func (e *GraphExec) Destroy() error {
	return ErrNoCgo
}

// Load reports ErrNoCgo.
func Load() (*Driver, error) { return LoadFrom(LibraryName) }

// Bytes is empty without cgo.
func (h *HostMem) Bytes() []byte { return nil }

// Device is the zero device without cgo.
func (c *Context) Device() Device { return Device{} }
