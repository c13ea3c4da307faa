package kernels

import (
	"fmt"

	"golang.org/x/sys/cpu"
)

// ISA is an instruction-set level with its own implementation of the fast
// kernels. Generic is the portable Go code; the others are C with
// intrinsics, built only with cgo on amd64. A backend picks one level at
// construction (Detect) and passes it on every call; tests force each.
type ISA int

const (
	Generic ISA = iota // portable Go
	AVX2               // AVX2 + FMA, 8 lanes
	AVX512             // AVX-512 F/BW/VL, 16 lanes
)

func (i ISA) String() string {
	switch i {
	case Generic:
		return "generic"
	case AVX2:
		return "avx2"
	case AVX512:
		return "avx512"
	}
	return fmt.Sprintf("ISA(%d)", int(i))
}

// ParseISA reads a level name as printed by String; "auto" is Detect().
func ParseISA(s string) (ISA, error) {
	if s == "auto" || s == "" {
		return Detect(), nil
	}
	for _, i := range Supported() {
		if i.String() == s {
			return i, nil
		}
	}
	return Generic, fmt.Errorf("kernels: ISA %q is not supported here (have %v)", s, Supported())
}

// Supported lists the levels this binary and CPU can run, slowest first.
func Supported() []ISA {
	out := []ISA{Generic}
	if !simdBuilt {
		return out
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		out = append(out, AVX2)
	}
	if cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512DQ {
		out = append(out, AVX512)
	}
	return out
}

// Detect returns the fastest supported level.
func Detect() ISA {
	s := Supported()
	return s[len(s)-1]
}
