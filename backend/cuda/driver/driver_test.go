package driver

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestLoadMissingLibrary(t *testing.T) {
	d, err := LoadFrom("libcuda-missing-for-test.so.1")
	if err == nil || d != nil {
		t.Fatalf("LoadFrom(missing) = %v, %v; want an error", d, err)
	}
	if errors.Is(err, ErrNoCgo) {
		t.Skipf("built without cgo: %v", err)
	}
	if !errors.Is(err, ErrNoDriver) || !strings.Contains(err.Error(), "libcuda-missing-for-test.so.1") {
		t.Errorf("error %q should wrap ErrNoDriver and name the library", err)
	}
}

// TestLoadHere runs the real Load: on a machine without a GPU it must be a
// clean error that says why; with one, it lists the devices.
func TestLoadHere(t *testing.T) {
	d, infos, err := Probe()
	if err != nil {
		if !errors.Is(err, ErrNoDriver) && !errors.Is(err, ErrNoDevice) && !errors.Is(err, ErrNoCgo) {
			t.Fatalf("Probe: %v: want ErrNoDriver, ErrNoDevice or ErrNoCgo", err)
		}
		t.Skipf("no CUDA device: %v", err)
	}
	v, err := d.Version()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("driver %d.%d", v/1000, v%1000/10)
	for _, i := range infos {
		t.Log(i)
		if i.Major < 5 || i.SMs <= 0 || i.TotalMem <= 0 || i.BandwidthGBs() <= 0 {
			t.Errorf("implausible device info %+v", i)
		}
	}
}

func TestArgsPacking(t *testing.T) {
	var a Args
	a.Int32(-7).Ptr(0x1122334455667788).Float32(1.5).Int(3).Uint32(9).Int64(-1).Float32(2)
	if got, want := a.Sizes(), []int{4, 8, 4, 4, 4, 8, 4}; !slices.Equal(got, want) {
		t.Fatalf("sizes %v, want %v", got, want)
	}
	buf, offs := a.Bytes()
	// Natural alignment: the pointer after an int32 starts at 8, the int64
	// after three 4-byte values at 24.
	if want := []int32{0, 8, 16, 20, 24, 32, 40}; !slices.Equal(offs, want) {
		t.Fatalf("offsets %v, want %v", offs, want)
	}
	if len(buf) != 44 {
		t.Errorf("buffer %d bytes, want 44", len(buf))
	}
	if buf[8] != 0x88 || buf[15] != 0x11 || buf[0] != 0xf9 || buf[3] != 0xff {
		t.Errorf("values not little-endian in place: % x", buf)
	}
	if a.Reset().Len() != 0 || a.Err() != nil {
		t.Error("Reset did not empty the list")
	}
	a.Int(1 << 40)
	if a.Err() == nil {
		t.Error("an int that does not fit in int32 was accepted")
	}
	a.Reset()
	for range maxLaunchArgs + 1 {
		a.Int32(0)
	}
	if a.Err() == nil || a.Len() != maxLaunchArgs {
		t.Errorf("%d arguments accepted (err %v), want an error after %d", a.Len(), a.Err(), maxLaunchArgs)
	}
}

func TestErrorNames(t *testing.T) {
	for r, want := range map[Result]string{
		0: "CUDA_SUCCESS", 2: "CUDA_ERROR_OUT_OF_MEMORY", 34: "CUDA_ERROR_STUB_LIBRARY",
		100: "CUDA_ERROR_NO_DEVICE", 209: "CUDA_ERROR_NO_BINARY_FOR_GPU", 700: "CUDA_ERROR_ILLEGAL_ADDRESS",
		999: "CUDA_ERROR_UNKNOWN", 12345: "CUDA_ERROR_12345",
	} {
		if got := ResultName(r); got != want {
			t.Errorf("ResultName(%d) = %s, want %s", r, got, want)
		}
	}
	e := &Error{Op: "cuMemAlloc_v2(64 bytes)", Code: 2, Name: ResultName(2)}
	if got := e.Error(); got != "cuda: cuMemAlloc_v2(64 bytes): CUDA_ERROR_OUT_OF_MEMORY (2)" {
		t.Errorf("Error() = %q", got)
	}
	if !errors.Is(&Error{Code: ErrorNoDevice}, ErrNoDevice) || !errors.Is(&Error{Code: ErrorStubLibrary}, ErrNoDevice) || errors.Is(e, ErrNoDevice) {
		t.Error("errors.Is(…, ErrNoDevice) wrong")
	}
}

// headerEnum reads NAME = value pairs from the toolkit's cuda.h, when it
// is installed (it is not needed to build, only to check our copies).
func headerEnum(t *testing.T, prefix string) map[string]int {
	t.Helper()
	b, err := os.ReadFile("/usr/include/cuda.h")
	if err != nil {
		t.Skipf("cuda.h not installed, nothing to compare with: %v", err)
	}
	m := map[string]int{}
	re := regexp.MustCompile(`(?m)^\s*(` + prefix + `\w+)\s*=\s*(0x[0-9a-fA-F]+|\d+)\b`)
	for _, s := range re.FindAllStringSubmatch(string(b), -1) {
		n, _ := strconv.ParseInt(s[2], 0, 64)
		m[s[1]] = int(n)
	}
	return m
}

func TestErrorNamesMatchHeader(t *testing.T) {
	h := headerEnum(t, "CUDA_")
	checked := 0
	for r := range Result(1000) {
		name := ResultName(r)
		if strings.HasPrefix(name, "CUDA_ERROR_") && name[len("CUDA_ERROR_")] >= '0' && name[len("CUDA_ERROR_")] <= '9' {
			continue
		}
		if v, ok := h[name]; !ok || v != int(r) {
			t.Errorf("%s = %d here, %d (present %v) in cuda.h", name, r, v, ok)
		}
		checked++
	}
	t.Logf("%d names checked against cuda.h", checked)
}

func TestAttributesMatchHeader(t *testing.T) {
	h := headerEnum(t, "CU_")
	for name, v := range map[string]int{
		"CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK":             int(AttrMaxThreadsPerBlock),
		"CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK":       int(AttrMaxSharedMemoryPerBlock),
		"CU_DEVICE_ATTRIBUTE_WARP_SIZE":                         int(AttrWarpSize),
		"CU_DEVICE_ATTRIBUTE_CLOCK_RATE":                        int(AttrClockRate),
		"CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT":              int(AttrMultiprocessorCount),
		"CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE":                 int(AttrMemoryClockRate),
		"CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH":           int(AttrGlobalMemoryBusWidth),
		"CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE":                     int(AttrL2CacheSize),
		"CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR":          int(AttrComputeCapabilityMajor),
		"CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR":          int(AttrComputeCapabilityMinor),
		"CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN": int(AttrMaxSharedMemoryOptin),
		"CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES":       int(funcAttrMaxDynamicSharedSize),
		"CU_STREAM_CAPTURE_MODE_RELAXED":                        captureModeRelaxed,
		"CU_STREAM_NON_BLOCKING":                                StreamNonBlocking,
		"CU_EVENT_DISABLE_TIMING":                               EventDisableTiming,
	} {
		if got, ok := h[name]; !ok || got != v {
			t.Errorf("%s = %d here, %d (present %v) in cuda.h", name, v, got, ok)
		}
	}
}

// TestStubMatchesAPI keeps the CGO_ENABLED=0 stub's exported API equal to
// the real one, so code using the package builds both ways.
func TestStubMatchesAPI(t *testing.T) {
	api := func(file string) []string {
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				name := d.Name.Name
				if d.Recv != nil {
					name = types(d.Recv) + "." + name
				}
				out = append(out, name+"("+types(d.Type.Params)+")("+types(d.Type.Results)+")")
			case *ast.GenDecl:
				for _, s := range d.Specs {
					if ts, ok := s.(*ast.TypeSpec); ok && ts.Name.IsExported() {
						out = append(out, "type "+ts.Name.Name)
					}
				}
			}
		}
		slices.Sort(out)
		return out
	}
	real, stub := api("driver_cgo.go"), api("driver_nocgo.go")
	if !slices.Equal(real, stub) {
		t.Errorf("stub API differs:\ncgo:   %v\nnocgo: %v", real, stub)
	}
}

func types(fl *ast.FieldList) string {
	if fl == nil {
		return ""
	}
	var s []string
	for _, f := range fl.List {
		n := max(len(f.Names), 1)
		for range n {
			s = append(s, exprString(f.Type))
		}
	}
	return strings.Join(s, ",")
}

func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.StarExpr:
		return "*" + exprString(e.X)
	case *ast.ArrayType:
		return "[]" + exprString(e.Elt)
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	}
	return "?"
}
