package webhook

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// applyAdd applies RFC 6902 "add" operations to a JSON document: enough to check that a
// Mutation's Pod is what its Patch makes of the input pod (the API server's own JSON Patch
// library is not a dependency of this module).
func applyAdd(doc []byte, ops []PatchOperation) ([]byte, error) {
	var root any
	if err := json.Unmarshal(doc, &root); err != nil {
		return nil, err
	}
	for _, op := range ops {
		if op.Op != "add" {
			return nil, fmt.Errorf("op %q: only add is used", op.Op)
		}
		raw, err := json.Marshal(op.Value)
		if err != nil {
			return nil, err
		}
		var value any
		if err := json.Unmarshal(raw, &value); err != nil {
			return nil, err
		}
		tokens := strings.Split(op.Path, "/")[1:]
		for i, t := range tokens {
			tokens[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
		}
		if root, err = addAt(root, tokens, value); err != nil {
			return nil, fmt.Errorf("%s: %w", op.Path, err)
		}
	}
	return json.Marshal(root)
}

func addAt(node any, tokens []string, value any) (any, error) {
	if len(tokens) == 0 {
		return value, nil
	}
	switch n := node.(type) {
	case map[string]any:
		if len(tokens) == 1 {
			n[tokens[0]] = value
			return n, nil
		}
		child, ok := n[tokens[0]]
		if !ok {
			return nil, fmt.Errorf("no member %q", tokens[0])
		}
		c, err := addAt(child, tokens[1:], value)
		n[tokens[0]] = c
		return n, err
	case []any:
		i, err := strconv.Atoi(tokens[0])
		if tokens[0] == "-" {
			i, err = len(n), nil
		}
		if err != nil || i < 0 || i > len(n) {
			return nil, fmt.Errorf("bad index %q", tokens[0])
		}
		if len(tokens) == 1 {
			return append(n[:i], append([]any{value}, n[i:]...)...), nil
		}
		c, err := addAt(n[i], tokens[1:], value)
		n[i] = c
		return n, err
	default:
		return nil, fmt.Errorf("cannot add into %T", node)
	}
}
