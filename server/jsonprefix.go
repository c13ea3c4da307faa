package server

// jsonPrefix tracks whether the bytes seen so far can begin a JSON object
// (RFC 8259), one byte at a time. It is a small value type so that the
// tool-call constraint can try every vocabulary token from the current state
// by copying it.
type jsonPrefix struct {
	stack [64]byte // open containers: '{' or '['
	depth int
	state jstate
	sub   uint8 // literal: bytes matched; string: \u hex digits left
	lit   uint8 // which literal: 't', 'f', 'n'
	key   bool  // the string being read is an object key
	num   numState
	bad   bool
}

type jstate uint8

const (
	jsTop        jstate = iota // before the top-level object
	jsValue                    // a value is expected
	jsValueOrEnd               // after '[': a value or ']'
	jsKeyOrEnd                 // after '{': a key or '}'
	jsKey                      // after ',' in an object: a key
	jsColon                    // after a key
	jsAfter                    // after a value: ',' or a closer
	jsString                   // inside a string
	jsEscape                   // after '\' in a string
	jsUnicode                  // inside \uXXXX
	jsNumber                   // inside a number
	jsLiteral                  // inside true / false / null
	jsDone                     // the top-level object is closed
)

type numState uint8

const (
	nMinus numState = iota // "-"
	nZero                  // "0" or "-0"
	nInt                   // digits
	nDot                   // "1."
	nFrac                  // "1.5"
	nE                     // "1e"
	nESign                 // "1e+"
	nExp                   // "1e5"
)

func literal(first byte) string {
	switch first {
	case 't':
		return "true"
	case 'f':
		return "false"
	}
	return "null"
}

// isSpace accepts only the space between tokens: JSON also allows tabs and
// newlines, but a tool call's arguments have no use for them, and allowing
// them lets a weak model pad the arguments forever.
func isSpace(c byte) bool { return c == ' ' }

// done reports a complete top-level object.
func (j *jsonPrefix) done() bool { return !j.bad && j.state == jsDone }

// feed advances over b; it reports false once the bytes cannot be a prefix
// of a JSON object.
func (j *jsonPrefix) feed(b []byte) bool {
	for _, c := range b {
		if !j.byte(c) {
			j.bad = true
			return false
		}
	}
	return true
}

func (j *jsonPrefix) byte(c byte) bool {
	if j.bad {
		return false
	}
	switch j.state {
	case jsTop:
		if isSpace(c) {
			return true
		}
		if c != '{' {
			return false
		}
		return j.open(c)
	case jsDone:
		return isSpace(c)
	case jsString:
		switch {
		case c == '"':
			j.endString()
		case c == '\\':
			j.state = jsEscape
		case c < 0x20:
			return false
		}
		return true
	case jsEscape:
		switch c {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			j.state = jsString
		case 'u':
			j.state, j.sub = jsUnicode, 4
		default:
			return false
		}
		return true
	case jsUnicode:
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
		if j.sub--; j.sub == 0 {
			j.state = jsString
		}
		return true
	case jsLiteral:
		lit := literal(j.lit)
		if c != lit[j.sub] {
			return false
		}
		if j.sub++; int(j.sub) == len(lit) {
			j.afterValue()
		}
		return true
	case jsNumber:
		if j.number(c) {
			return true
		}
		if !j.numberComplete() {
			return false
		}
		j.afterValue()
		return j.byte(c)
	}
	if isSpace(c) {
		return true
	}
	switch j.state {
	case jsValue, jsValueOrEnd:
		if c == ']' && j.state == jsValueOrEnd {
			return j.close(c)
		}
		return j.value(c)
	case jsKeyOrEnd, jsKey:
		if c == '}' && j.state == jsKeyOrEnd {
			return j.close(c)
		}
		if c != '"' {
			return false
		}
		j.state, j.key = jsString, true
		return true
	case jsColon:
		if c != ':' {
			return false
		}
		j.state = jsValue
		return true
	case jsAfter:
		top := j.stack[j.depth-1]
		switch {
		case c == ',' && top == '{':
			j.state = jsKey
		case c == ',' && top == '[':
			j.state = jsValue
		case c == '}' || c == ']':
			return j.close(c)
		default:
			return false
		}
		return true
	}
	return false
}

func (j *jsonPrefix) value(c byte) bool {
	switch {
	case c == '{' || c == '[':
		return j.open(c)
	case c == '"':
		j.state, j.key = jsString, false
	case c == '-':
		j.state, j.num = jsNumber, nMinus
	case c == '0':
		j.state, j.num = jsNumber, nZero
	case c >= '1' && c <= '9':
		j.state, j.num = jsNumber, nInt
	case c == 't' || c == 'f' || c == 'n':
		j.state, j.lit, j.sub = jsLiteral, c, 1
	default:
		return false
	}
	return true
}

func (j *jsonPrefix) open(c byte) bool {
	if j.depth == len(j.stack) {
		return false // deeper than any sensible tool argument
	}
	j.stack[j.depth] = c
	j.depth++
	if c == '{' {
		j.state = jsKeyOrEnd
	} else {
		j.state = jsValueOrEnd
	}
	return true
}

func (j *jsonPrefix) close(c byte) bool {
	if j.depth == 0 || (c == '}') != (j.stack[j.depth-1] == '{') {
		return false
	}
	j.depth--
	j.afterValue()
	return true
}

func (j *jsonPrefix) endString() {
	if j.key {
		j.state = jsColon
		return
	}
	j.afterValue()
}

func (j *jsonPrefix) afterValue() {
	if j.depth == 0 {
		j.state = jsDone
		return
	}
	j.state = jsAfter
}

// number consumes c if it continues the number.
func (j *jsonPrefix) number(c byte) bool {
	digit := c >= '0' && c <= '9'
	switch j.num {
	case nMinus:
		switch {
		case c == '0':
			j.num = nZero
		case digit:
			j.num = nInt
		default:
			return false
		}
	case nZero, nInt:
		switch {
		case digit && j.num == nInt:
		case c == '.':
			j.num = nDot
		case c == 'e' || c == 'E':
			j.num = nE
		default:
			return false
		}
	case nDot:
		if !digit {
			return false
		}
		j.num = nFrac
	case nFrac:
		switch {
		case digit:
		case c == 'e' || c == 'E':
			j.num = nE
		default:
			return false
		}
	case nE:
		switch {
		case c == '+' || c == '-':
			j.num = nESign
		case digit:
			j.num = nExp
		default:
			return false
		}
	case nESign, nExp:
		if !digit {
			return false
		}
		j.num = nExp
	}
	return true
}

func (j *jsonPrefix) numberComplete() bool {
	return j.num == nZero || j.num == nInt || j.num == nFrac || j.num == nExp
}

// closer returns the next byte of the shortest way to finish the object
// from the current state, used to force arguments closed when the token
// budget runs out.
func (j *jsonPrefix) closer() byte {
	switch j.state {
	case jsTop:
		return '{'
	case jsString:
		return '"'
	case jsEscape:
		return 'n'
	case jsUnicode:
		return '0'
	case jsLiteral:
		return literal(j.lit)[j.sub]
	case jsNumber:
		if j.numberComplete() {
			if j.depth > 0 && j.stack[j.depth-1] == '[' {
				return ']'
			}
			return '}'
		}
		return '0'
	case jsValue:
		return '0'
	case jsValueOrEnd:
		return ']'
	case jsKeyOrEnd:
		return '}'
	case jsKey:
		return '"'
	case jsColon:
		return ':'
	case jsAfter:
		if j.stack[j.depth-1] == '[' {
			return ']'
		}
		return '}'
	}
	return ' '
}
