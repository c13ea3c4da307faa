package backend

import (
	"strings"
	"testing"
)

// TestChecks: each shared shape check accepts a consistent call and
// refuses every kind of mismatch with an error naming the op, never a
// panic (attention with zero-width q divided by zero before the checks
// were shared).
func TestChecks(t *testing.T) {
	x, q, kv := Dims{4, 64}, Dims{4, 128}, Dims{4, 32} // 8 heads of 16, 2 kv heads
	seg := []Segment{{Row: 0, Len: 4}}
	gu, dn := []int{8, 128, 2, 16}, []int{8, 64, 2, 16} // hidden 64, intermediate 64
	ok := []struct {
		name string
		err  error
	}{
		{"embed", CheckEmbed(x, 100, 64, []int32{0, 99})},
		{"rmsnorm", CheckRMSNorm(4, x, x, 64)},
		{"linear", CheckLinear(4, q, x, 128, 64, 128)},
		{"linear without bias", CheckLinear(3, q, x, 128, 64, -1)},
		{"add", CheckAdd(4, x, x)},
		{"rope", CheckRoPE(q, 8, 16, seg)},
		{"topk", CheckTopK(4, 4, Dims{4, 4}, Dims{4, 4}, Dims{4, 8})},
		{"copyrows", CheckCopyRows(Dims{2, 64}, x, []int{3, 0})},
		{"moe", CheckMoE(4, x, x, Dims{4, 4}, Dims{4, 4}, gu, dn)},
	}
	for _, c := range ok {
		if c.err != nil {
			t.Errorf("%s: %v", c.name, c.err)
		}
	}
	if hd, kvh, err := CheckAttention(q, q, kv, kv, 8, seg); err != nil || hd != 16 || kvh != 2 {
		t.Errorf("attention: %d, %d, %v", hd, kvh, err)
	}
	_, _, attnNoCols := CheckAttention(Dims{4, 0}, Dims{4, 0}, kv, kv, 8, seg)
	_, _, attnKV := CheckAttention(q, q, Dims{4, 48}, Dims{4, 48}, 8, seg)
	_, _, attnRows := CheckAttention(q, q, kv, kv, 8, []Segment{{Row: 2, Len: 3}})
	bad := []struct {
		op  string
		err error
	}{
		{"embed", CheckEmbed(x, 100, 64, []int32{100})},
		{"embed", CheckEmbed(x, 100, 64, []int32{-1})},
		{"embed", CheckEmbed(Dims{1, 64}, 100, 64, []int32{1, 2})},
		{"rmsnorm", CheckRMSNorm(5, x, x, 64)},
		{"rmsnorm", CheckRMSNorm(4, x, x, 63)},
		{"linear", CheckLinear(4, q, x, 128, 64, 127)},
		{"linear", CheckLinear(4, x, x, 128, 64, -1)},
		{"linear", CheckLinear(-1, q, x, 128, 64, -1)},
		{"add", CheckAdd(4, x, q)},
		{"rope", CheckRoPE(q, 7, 16, seg)},
		{"rope", CheckRoPE(q, 8, 16, []Segment{{Row: 3, Len: 2}})},
		{"topk", CheckTopK(9, 4, Dims{4, 9}, Dims{4, 9}, Dims{4, 8})},
		{"topk", CheckTopK(4, 4, Dims{3, 4}, Dims{4, 4}, Dims{4, 8})},
		{"copyrows", CheckCopyRows(Dims{2, 64}, x, []int{4})},
		{"copyrows", CheckCopyRows(Dims{1, 64}, x, []int{0, 1})},
		{"moe", CheckMoE(4, x, q, Dims{4, 4}, Dims{4, 4}, gu, dn)},
		{"moe", CheckMoE(4, x, x, Dims{4, 4}, Dims{4, 4}, gu, []int{7, 64, 2, 16})},
		{"moe", CheckMoE(4, x, x, Dims{4, 4}, Dims{4, 4}, gu, []int{8, 64})},
		{"moe", CheckMoE(5, x, x, Dims{5, 4}, Dims{5, 4}, gu, dn)},
		{"attention", attnNoCols},
		{"attention", attnKV},
		{"attention", attnRows},
	}
	for i, c := range bad {
		if c.err == nil || !strings.HasPrefix(c.err.Error(), c.op+": ") {
			t.Errorf("case %d (%s): %v", i, c.op, c.err)
		}
	}
}
