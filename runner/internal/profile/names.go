package profile

import (
	"strings"
	"unicode/utf8"
)

// MaxNameLen is the longest short kernel name, in characters.
const MaxNameLen = 56

// generic are kernel templates whose own name says little: ShortName adds
// the first telling name from their template arguments (the functor).
var generic = map[string]bool{
	"vectorized_elementwise_kernel": true, "unrolled_elementwise_kernel": true, "elementwise_kernel": true,
	"reduce_kernel": true, "Kernel": true, "Kernel2": true, "device_kernel": true, "kernel": true,
	"index_elementwise_kernel": true, "vectorized_gather_kernel": true,
}

// boring are namespaces and helpers skipped when looking for a telling name.
var boring = map[string]bool{
	"at": true, "native": true, "c10": true, "cuda": true, "std": true, "detail": true, "cutlass": true,
	"cute": true, "void": true, "Array": true, "func_wrapper_t": true, "ReduceOp": true, "OffsetCalculator": true,
	"TrivialOffsetCalculator": true, "LoadWithoutCast": true, "StoreWithoutCast": true, "memory": true,
	"policies": true, "anonymous": true, "BFloat16": true, "Half": true, "float": true,
}

// ShortName turns a kernel name into a short readable one: an Itanium-mangled
// C++ name becomes its last two scope components, plus the functor for
// generic templates (vectorized_elementwise_kernel<silu_kernel>); any other
// name (cuBLAS, Triton) is kept, cut to MaxNameLen in the middle: its start and
// its last tailLen characters. Kernels are grouped by this name, and generated
// names differ at their end (Triton's unique kernel names, e.g.
// triton_red_fused_…_mm_mul_pow_rsqrt_t_view_14 and …_view_16, are different
// kernels with a common 60-character start): a cut at the end merged them.
func ShortName(name string) string {
	if name == "" {
		return "(unknown)"
	}
	if strings.HasPrefix(name, "_Z") {
		if s := demangleShort(name[2:]); s != "" {
			return cut(s)
		}
	}
	return cutMiddle(name)
}

// tailLen is how many closing characters cutMiddle keeps.
const tailLen = 18

func cutMiddle(s string) string {
	r := []rune(s)
	if len(r) <= MaxNameLen {
		return s
	}
	return string(r[:MaxNameLen-1-tailLen]) + "…" + string(r[len(r)-tailLen:])
}

func cut(s string) string {
	if utf8.RuneCountInString(s) <= MaxNameLen {
		return s
	}
	r := []rune(s)
	return string(r[:MaxNameLen-1]) + "…"
}

// demangleShort reads the leading name of a mangled encoding: a nested name
// N…E or one source name, then the template arguments that follow.
func demangleShort(s string) string {
	p := &mangled{s: s}
	var parts []string
	var args []string
	if p.peek() == 'N' {
		p.i++
		for p.i < len(p.s) && strings.IndexByte("rVKRO", p.s[p.i]) >= 0 {
			p.i++
		}
		for p.i < len(p.s) && p.s[p.i] != 'E' {
			switch c := p.s[p.i]; {
			case c >= '0' && c <= '9':
				parts = append(parts, p.source())
			case c == 'I':
				// Template arguments: more scope follows only as another
				// source name; anything else is the signature (or an
				// argument list read wrong), never part of the name.
				args = p.templateArgs()
				if c := p.peek(); c < '0' || c > '9' {
					p.i = len(p.s)
				}
			case c == 'S' && p.i+1 < len(p.s) && p.s[p.i+1] == 't':
				parts = append(parts, "std")
				p.i += 2
			case c == 'U' && p.i+1 < len(p.s) && p.s[p.i+1] == 'l':
				parts = append(parts, "{lambda}")
				p.skipTo('E')
			default:
				p.i++ // substitutions, ctor/dtor codes: nothing readable
			}
		}
	} else if c := p.peek(); c >= '0' && c <= '9' {
		parts = append(parts, p.source())
		if p.peek() == 'I' {
			args = p.templateArgs()
		}
	}
	var keep []string
	for _, x := range parts {
		if x != "" && !strings.HasPrefix(x, "_GLOBAL__N") {
			keep = append(keep, x)
		}
	}
	if len(keep) == 0 {
		return ""
	}
	last := keep[len(keep)-1]
	out := last
	if len(keep) > 1 && !boring[keep[len(keep)-2]] {
		out = keep[len(keep)-2] + "::" + last
	}
	if generic[last] {
		for _, a := range args {
			if len(a) >= 4 && !boring[a] && !strings.HasPrefix(a, "_GLOBAL__N") && a != last {
				return out + "<" + a + ">"
			}
		}
	}
	return out
}

type mangled struct {
	s string
	i int
}

func (p *mangled) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

// source reads <length><identifier>.
func (p *mangled) source() string {
	n := 0
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		n = n*10 + int(p.s[p.i]-'0')
		p.i++
		if n > len(p.s) {
			break
		}
	}
	if p.i+n > len(p.s) {
		p.i = len(p.s)
		return ""
	}
	id := p.s[p.i : p.i+n]
	p.i += n
	return id
}

// templateArgs skips a balanced I…E block and returns the source names in it.
func (p *mangled) templateArgs() []string {
	var names []string
	depth := 0
	for p.i < len(p.s) {
		switch c := p.s[p.i]; {
		case c >= '0' && c <= '9':
			if x := p.source(); x != "" {
				names = append(names, x)
			}
			continue
		case c == 'S' || c == 'T':
			// substitution S<id>_ / template parameter T<id>_ (their digits
			// are no length); St, Sa… are std:: abbreviations
			j := p.i + 1
			for j < len(p.s) && (p.s[j] >= '0' && p.s[j] <= '9' || p.s[j] >= 'A' && p.s[j] <= 'Z') {
				j++
			}
			if j < len(p.s) && p.s[j] == '_' {
				p.i = j + 1
			} else {
				p.i = min(p.i+2, len(p.s))
			}
			continue
		case c == 'L' && depth > 0:
			p.skipTo('E') // a literal: L <type> <value> E
			continue
		case c == 'U' && p.i+1 < len(p.s) && p.s[p.i+1] == 'l':
			depth++ // a lambda: Ul <parameter types> E
			p.i += 2
			continue
		case c == 'I' || c == 'N' || c == 'X' || c == 'Z' || c == 'F':
			depth++
		case c == 'E':
			depth--
			if depth == 0 {
				p.i++
				return names
			}
		}
		p.i++
	}
	return names
}

func (p *mangled) skipTo(c byte) {
	if j := strings.IndexByte(p.s[p.i:], c); j >= 0 {
		p.i += j + 1
		return
	}
	p.i = len(p.s)
}
