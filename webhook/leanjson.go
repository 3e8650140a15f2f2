package webhook

import (
	"bytes"
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The lean path reads the review without encoding/json's reflection: validCompact checks the body
// once and notes where each object and array ends, then the leanDoc readers walk down to the
// members Mutate reads, skipping the others (managedFields, status) without scanning them again. Every reader here is conservative: a member it
// reads that has another type than expected, or appears twice (encoding/json would merge or
// overwrite), makes the lean path give up, and the full decode decides with encoding/json's own
// checks and messages.

// maxLeanDepth bounds the nesting validCompact follows (a pod the API server writes nests about 20
// levels, in managedFields); deeper bodies take the full decode.
const maxLeanDepth = 200

// leanDoc is a review body validCompact accepted, with where each of its objects and arrays ends,
// so that the readers below skip a member's value without scanning it again.
type leanDoc struct {
	data  []byte
	spans []span // every object and array of data, by start
}

type span struct{ start, end int32 }

// validCompact returns the leanDoc of data when data is one JSON value, possibly surrounded by
// whitespace, with no whitespace inside it outside strings. It implies json.Valid(data); it may
// refuse some valid JSON (whitespace inside, nesting beyond maxLeanDepth, bodies of 2 GiB), never
// accepts invalid JSON.
func validCompact(data []byte) (*leanDoc, bool) {
	d := &leanDoc{data: bytes.Trim(data, " \t\r\n"), spans: make([]span, 0, 256)} // JSON whitespace only
	if len(d.data) >= math.MaxInt32 {
		return nil, false
	}
	end, ok := d.validValue(0, 0)
	return d, ok && end == len(d.data)
}

// validValue returns the index after the compact JSON value at d.data[i].
func (d *leanDoc) validValue(i, depth int) (int, bool) {
	b := d.data
	if i >= len(b) {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		return validString(b, i)
	case c == '{', c == '[':
		if depth >= maxLeanDepth {
			return 0, false
		}
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		n := len(d.spans)
		d.spans = append(d.spans, span{start: int32(i)})
		i++
		if i < len(b) && b[i] == closing {
			d.spans[n].end = int32(i + 1)
			return i + 1, true
		}
		for {
			var ok bool
			if c == '{' {
				if i, ok = validString(b, i); !ok || i >= len(b) || b[i] != ':' {
					return 0, false
				}
				i++
			}
			if i, ok = d.validValue(i, depth+1); !ok || i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case ',':
				i++
			case closing:
				d.spans[n].end = int32(i + 1)
				return i + 1, true
			default:
				return 0, false
			}
		}
	case c == 't':
		return validLiteral(b, i, "true")
	case c == 'f':
		return validLiteral(b, i, "false")
	case c == 'n':
		return validLiteral(b, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return validNumber(b, i)
	}
	return 0, false
}

// skip returns the index in v (a part of d.data) after the value at v[i].
func (d *leanDoc) skip(v []byte, i int) (int, bool) {
	if i >= len(v) {
		return 0, false
	}
	switch v[i] {
	case '{', '[':
		base := cap(d.data) - cap(v) // v is d.data[base:...]
		abs := int32(base + i)
		k, found := slices.BinarySearchFunc(d.spans, abs, func(s span, t int32) int { return cmp.Compare(s.start, t) })
		if !found {
			return 0, false
		}
		return int(d.spans[k].end) - base, true
	case '"':
		end, err := skipString(v, i)
		return end, err == nil
	}
	end, err := skipValue(v, i)
	return end, err == nil
}

func validLiteral(b []byte, i int, lit string) (int, bool) {
	if !bytes.HasPrefix(b[i:], []byte(lit)) {
		return 0, false
	}
	return i + len(lit), true
}

// validString returns the index after the JSON string at b[i]: no control characters, valid
// escapes (encoding/json, like RFC 8259, accepts any other byte).
func validString(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return 0, false
		case c == '\\':
			i++
			if i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return 0, false
				}
				for _, h := range b[i+1 : i+5] {
					if !isHex(h) {
						return 0, false
					}
				}
				i += 4
			default:
				return 0, false
			}
		}
	}
	return 0, false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// validNumber returns the index after the JSON number at b[i] (RFC 8259 section 6).
func validNumber(b []byte, i int) (int, bool) {
	digits := func(i int) (int, bool) {
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i, i > start
	}
	if b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return 0, false
	}
	var ok bool
	if b[i] == '0' {
		i++
	} else if i, ok = digits(i); !ok {
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		if i, ok = digits(i + 1); !ok {
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i, ok = digits(i); !ok {
			return 0, false
		}
	}
	return i, true
}

// maxLeanFields is the most members fields reads from one object.
const maxLeanFields = 8

// fields returns the values of the named members of the compact JSON object raw, matched
// case-insensitively as encoding/json matches struct fields (nil for an absent member or null).
// ok is false when raw is not an object or a named member appears twice.
func (d *leanDoc) fields(raw []byte, names ...string) (values [maxLeanFields][]byte, ok bool) {
	if len(raw) < 2 || raw[0] != '{' || raw[len(raw)-1] != '}' || len(names) > maxLeanFields {
		return values, false
	}
	var seen [maxLeanFields]bool
	for i := 1; i < len(raw)-1; {
		if i > 1 {
			if raw[i] != ',' {
				return values, false
			}
			i++
		}
		keyEnd, err := skipString(raw, i)
		if err != nil || keyEnd >= len(raw) || raw[keyEnd] != ':' {
			return values, false
		}
		key := raw[i+1 : keyEnd-1]
		valueEnd, ok := d.skip(raw, keyEnd+1)
		if !ok {
			return values, false
		}
		for j, name := range names {
			if !keyFold(key, raw[i:keyEnd], name) {
				continue
			}
			if seen[j] {
				return values, false
			}
			seen[j] = true
			if v := raw[keyEnd+1 : valueEnd]; !isNull(v) {
				values[j] = v
			}
			break
		}
		i = valueEnd
	}
	return values, true
}

// keyFold reports whether a member's key (its JSON string quoted, and its bytes between the
// quotes) equals name under Unicode case folding, as encoding/json matches a struct field.
func keyFold(key, quoted []byte, name string) bool {
	for _, c := range key {
		if c == '\\' || c >= 0x80 {
			k, err := unquote(quoted)
			return err == nil && strings.EqualFold(k, name)
		}
	}
	if len(key) != len(name) {
		return false
	}
	for i, c := range key {
		if n := name[i]; c != n {
			if lc := c | 0x20; lc != n|0x20 || lc < 'a' || lc > 'z' {
				return false
			}
		}
	}
	return true
}

func isNull(v []byte) bool { return len(v) == 4 && string(v) == "null" }

// leanString decodes a JSON string value ("" for nil: absent or null).
func leanString(v []byte) (string, bool) {
	if v == nil {
		return "", true
	}
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	s, err := unquote(v)
	return s, err == nil
}

// unquote decodes a JSON string; escapes and non-ASCII bytes (encoding/json replaces invalid UTF-8)
// go through encoding/json.
func unquote(v []byte) (string, error) {
	plain := len(v) >= 2 && v[0] == '"'
	for _, c := range v {
		if c == '\\' || c >= 0x80 {
			plain = false
			break
		}
	}
	if plain {
		return string(v[1 : len(v)-1]), nil
	}
	var s string
	err := json.Unmarshal(v, &s)
	return s, err
}

// leanStringMap decodes a JSON object of strings (nil for nil).
func leanStringMap(v []byte) (map[string]string, bool) {
	if v == nil {
		return nil, true
	}
	members, err := objectMembers(v)
	if err != nil {
		return nil, false
	}
	out := make(map[string]string, len(members))
	for _, m := range members {
		val, ok := leanString(v[m.valueStart:m.valueEnd])
		if !ok || isNull(v[m.valueStart:m.valueEnd]) {
			return nil, false
		}
		out[m.key] = val
	}
	return out, true
}

// array returns the elements of a JSON array (nil for nil; non-nil for an empty array).
func (d *leanDoc) array(v []byte) ([][]byte, bool) {
	if v == nil {
		return nil, true
	}
	if len(v) < 2 || v[0] != '[' || v[len(v)-1] != ']' {
		return nil, false
	}
	out := make([][]byte, 0, 4)
	for i := 1; i < len(v)-1; {
		end, ok := d.skip(v, i)
		if !ok {
			return nil, false
		}
		out = append(out, v[i:end])
		i = end
		if i < len(v)-1 {
			if v[i] != ',' {
				return nil, false
			}
			i++
		}
	}
	return out, true
}

// names returns the "name" of each object of a JSON array (env entries, volume mounts,
// volumes).
func (d *leanDoc) names(v []byte) ([]string, bool) {
	elems, ok := d.array(v)
	if !ok || elems == nil {
		return nil, ok
	}
	names := make([]string, len(elems))
	for i, e := range elems {
		f, ok := d.fields(e, "name")
		if !ok {
			return nil, false
		}
		if names[i], ok = leanString(f[0]); !ok {
			return nil, false
		}
	}
	return names, true
}

// leanInt64 decodes a JSON integer into a new int64 (nil for nil).
func leanInt64(v []byte) (*int64, bool) {
	if v == nil {
		return nil, true
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return nil, false
	}
	return &n, true
}

// leanBool decodes a JSON boolean into a new bool (nil for nil).
func leanBool(v []byte) (*bool, bool) {
	switch string(v) {
	case "":
		return nil, v == nil
	case "true":
		b := true
		return &b, true
	case "false":
		b := false
		return &b, true
	}
	return nil, false
}
