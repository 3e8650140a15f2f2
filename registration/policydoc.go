package registration

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
)

// normalizePolicy returns a canonical form of an IAM policy document, so that two documents IAM
// treats alike compare equal: whitespace and key order do not matter, a single string equals a
// one-element list (Action, NotAction, Resource, NotResource, each Principal and Condition value),
// the order of list elements and of statements does not matter, and "Statement" may be one object
// or a list.
func normalizePolicy(doc string) (string, error) {
	var v map[string]any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		return "", err
	}
	if v == nil {
		return "", errors.New("the document is not a JSON object")
	}
	var stmts []any
	switch s := v["Statement"].(type) {
	case []any:
		stmts = s
	case map[string]any:
		stmts = []any{s}
	default:
		return "", errors.New(`the document has no "Statement"`)
	}
	canon := make([]string, 0, len(stmts))
	for _, st := range stmts {
		m, ok := st.(map[string]any)
		if !ok {
			return "", errors.New("a statement is not a JSON object")
		}
		for _, k := range []string{"Action", "NotAction", "Resource", "NotResource"} {
			if x, ok := m[k]; ok {
				m[k] = stringSet(x)
			}
		}
		for _, k := range []string{"Principal", "NotPrincipal", "Condition"} {
			if x, ok := m[k].(map[string]any); ok {
				for pk, pv := range x {
					if inner, ok := pv.(map[string]any); ok {
						for ik, iv := range inner {
							inner[ik] = stringSet(iv)
						}
						continue
					}
					x[pk] = stringSet(pv)
				}
			}
		}
		b, err := json.Marshal(m)
		if err != nil {
			return "", err
		}
		canon = append(canon, string(b))
	}
	slices.Sort(canon)
	v["Statement"] = json.RawMessage("[" + strings.Join(canon, ",") + "]")
	b, err := json.Marshal(v)
	return string(b), err
}

// stringSet turns a string or a list of strings into a sorted list without duplicates; anything
// else is returned as it is.
func stringSet(x any) any {
	var out []string
	switch v := x.(type) {
	case string:
		return []string{v}
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return x
			}
			out = append(out, s)
		}
	default:
		return x
	}
	slices.Sort(out)
	return slices.Compact(out)
}
