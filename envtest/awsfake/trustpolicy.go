package awsfake

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// trustPolicy is a parsed role trust policy (IAM's AssumeRolePolicyDocument): the grammar of the
// IAM JSON policy reference for the elements a trust policy uses.
type trustPolicy struct {
	statements []statement
}

type statement struct {
	allow        bool
	principals   map[string][]string // lower-cased type ("federated", "aws", "service") -> values; nil with anyPrincipal
	anyPrincipal bool
	actions      []string
	notAction    bool
	conditions   []condition
}

type condition struct {
	op       string // StringEquals, StringLike, ... without qualifier or IfExists
	ifExists bool
	set      string // "", "ForAnyValue", "ForAllValues"
	key      string // lower-cased
	values   []string
}

// errMalformedPolicy is IAM's MalformedPolicyDocument.
var errMalformedPolicy = errors.New("MalformedPolicyDocument")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformedPolicy, fmt.Sprintf(format, args...))
}

var stringOperators = map[string]bool{
	"StringEquals": true, "StringNotEquals": true,
	"StringEqualsIgnoreCase": true, "StringNotEqualsIgnoreCase": true,
	"StringLike": true, "StringNotLike": true,
}

// parseTrustPolicy parses the JSON a user writes (or oidc.TrustPolicy generates). Anything this fake
// cannot evaluate (NotPrincipal, non-string operators) is refused as malformed rather than ignored,
// so a policy never grants more here than it would in IAM.
func parseTrustPolicy(doc []byte) (*trustPolicy, error) {
	var raw struct {
		Version   string          `json:"Version"`
		Statement json.RawMessage `json:"Statement"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, malformed("not JSON: %v", err)
	}
	if raw.Version != "2012-10-17" && raw.Version != "2008-10-17" {
		return nil, malformed("Version %q, want 2012-10-17", raw.Version)
	}
	var stmts []map[string]json.RawMessage
	if err := json.Unmarshal(raw.Statement, &stmts); err != nil {
		var one map[string]json.RawMessage
		if err := json.Unmarshal(raw.Statement, &one); err != nil {
			return nil, malformed("Statement is neither an object nor a list of objects")
		}
		stmts = []map[string]json.RawMessage{one}
	}
	if len(stmts) == 0 {
		return nil, malformed("no Statement")
	}
	p := &trustPolicy{}
	for i, m := range stmts {
		st, err := parseStatement(m)
		if err != nil {
			return nil, fmt.Errorf("statement %d: %w", i, err)
		}
		p.statements = append(p.statements, st)
	}
	return p, nil
}

func parseStatement(m map[string]json.RawMessage) (statement, error) {
	var st statement
	for k := range m {
		switch k {
		case "Sid", "Effect", "Principal", "Action", "NotAction", "Condition":
		default:
			return st, malformed("unsupported element %q", k)
		}
	}
	var effect string
	if err := json.Unmarshal(m["Effect"], &effect); err != nil || (effect != "Allow" && effect != "Deny") {
		return st, malformed("Effect must be Allow or Deny")
	}
	st.allow = effect == "Allow"
	principal, ok := m["Principal"]
	if !ok {
		return st, malformed("a trust policy statement needs a Principal")
	}
	var star string
	if json.Unmarshal(principal, &star) == nil {
		if star != "*" {
			return st, malformed("Principal %q: want \"*\" or an object", star)
		}
		st.anyPrincipal = true
	} else {
		var byType map[string]json.RawMessage
		if err := json.Unmarshal(principal, &byType); err != nil {
			return st, malformed("Principal is neither \"*\" nor an object")
		}
		st.principals = map[string][]string{}
		for typ, v := range byType {
			vals, err := stringOrList(v)
			if err != nil {
				return st, malformed("Principal %s: %v", typ, err)
			}
			st.principals[strings.ToLower(typ)] = vals
		}
	}
	action, key := m["Action"], "Action"
	if na, ok := m["NotAction"]; ok {
		if action != nil {
			return st, malformed("both Action and NotAction")
		}
		action, key, st.notAction = na, "NotAction", true
	}
	if action == nil {
		return st, malformed("no Action")
	}
	var err error
	if st.actions, err = stringOrList(action); err != nil {
		return st, malformed("%s: %v", key, err)
	}
	if c, ok := m["Condition"]; ok {
		if st.conditions, err = parseConditions(c); err != nil {
			return st, err
		}
	}
	return st, nil
}

func parseConditions(raw json.RawMessage) ([]condition, error) {
	var ops map[string]map[string]json.RawMessage
	if err := json.Unmarshal(raw, &ops); err != nil {
		return nil, malformed("Condition must map operators to {key: value(s)}")
	}
	var out []condition
	for opName, keys := range ops {
		c := condition{op: opName}
		if set, rest, ok := strings.Cut(c.op, ":"); ok {
			if set != "ForAnyValue" && set != "ForAllValues" {
				return nil, malformed("unknown set qualifier %q", set)
			}
			c.set, c.op = set, rest
		}
		if base, ok := strings.CutSuffix(c.op, "IfExists"); ok {
			c.op, c.ifExists = base, true
		}
		if !stringOperators[c.op] {
			return nil, malformed("condition operator %q is not supported by this fake (string operators only)", opName)
		}
		for k, v := range keys {
			vals, err := stringOrList(v)
			if err != nil {
				return nil, malformed("%s %s: %v", opName, k, err)
			}
			cc := c
			cc.key, cc.values = strings.ToLower(k), vals
			out = append(out, cc)
		}
	}
	return out, nil
}

func stringOrList(raw json.RawMessage) ([]string, error) {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil || len(many) == 0 {
		return nil, errors.New("want a string or a non-empty list of strings")
	}
	return many, nil
}

// allows evaluates the policy for a request: an explicit Deny wins, otherwise some Allow must
// match; everything else is an implicit deny. principalType is lower-case ("federated"); context
// keys are lower-case.
func (p *trustPolicy) allows(principalType, principal, action string, context map[string][]string) bool {
	allowed := false
	for _, st := range p.statements {
		if !st.matches(principalType, principal, action, context) {
			continue
		}
		if !st.allow {
			return false
		}
		allowed = true
	}
	return allowed
}

func (st statement) matches(principalType, principal, action string, context map[string][]string) bool {
	if !st.anyPrincipal && !containsFold(st.principals[principalType], principal, false) {
		return false
	}
	if containsFold(st.actions, action, true) == st.notAction {
		return false
	}
	for _, c := range st.conditions {
		if !c.holds(context) {
			return false
		}
	}
	return true
}

// holds applies the IAM condition semantics: a missing key fails a positive operator and passes a
// negated one (and passes anything with IfExists); ForAllValues passes on an empty set.
func (c condition) holds(context map[string][]string) bool {
	got, present := context[c.key]
	negated := strings.Contains(c.op, "Not")
	if !present || len(got) == 0 {
		switch {
		case c.set == "ForAllValues":
			return true
		case c.ifExists:
			return true
		default:
			return negated
		}
	}
	positive := strings.Replace(c.op, "Not", "", 1)
	one := func(v string) bool {
		for _, want := range c.values {
			switch positive {
			case "StringEquals":
				if v == want {
					return true
				}
			case "StringEqualsIgnoreCase":
				if strings.EqualFold(v, want) {
					return true
				}
			case "StringLike":
				if globMatch(want, v) {
					return true
				}
			}
		}
		return false
	}
	if c.set == "ForAllValues" {
		for _, v := range got {
			if one(v) == negated {
				return false
			}
		}
		return true
	}
	for _, v := range got {
		if one(v) != negated {
			return true
		}
	}
	return false
}

// containsFold reports whether list holds s (case-insensitively when fold, with * and ? wildcards
// when glob, as IAM matches actions).
func containsFold(list []string, s string, glob bool) bool {
	for _, v := range list {
		if glob {
			if globMatch(strings.ToLower(v), strings.ToLower(s)) {
				return true
			}
		} else if v == s {
			return true
		}
	}
	return false
}

// globMatch matches IAM's StringLike wildcards: * any run of characters (including none and "/"),
// ? exactly one character.
func globMatch(pattern, s string) bool {
	p, v := []rune(pattern), []rune(s)
	pi, vi, star, mark := 0, 0, -1, 0
	for vi < len(v) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == v[vi]):
			pi++
			vi++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, vi
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			vi = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
