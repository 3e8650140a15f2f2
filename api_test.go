package ekslink_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoExportedAPIUsesAnInternalType walks the SDK's public packages and fails when an exported
// function, method, type, struct field, interface method or typed variable names a type from an
// internal package: a caller could get such a value but never name its type (as eksauth.STSHost's
// partition was, before it became an iamarn.Partition).
func TestNoExportedAPIUsesAnInternalType(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	dirs := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "." && skipDir(path) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		if f.Name.Name == "main" {
			return nil
		}
		checked++
		dirs[filepath.ToSlash(filepath.Dir(path))] = true
		for _, leak := range internalLeaks(f) {
			t.Errorf("%s: exported %s uses %s from an internal package: callers cannot name it; move the type to a public package",
				fset.Position(leak.pos), leak.name, leak.typ)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 20 {
		t.Fatalf("only %d files checked: the walk misses the packages", checked)
	}
	// The public test harness is API too: people embedding ekslink test with it.
	for _, dir := range []string{"envtest", "envtest/awstest", "envtest/awsfake", "oidc/publish/publishtest"} {
		if !dirs[dir] {
			t.Errorf("package %s was not checked: it must exist and be public", dir)
		}
	}
}

// skipDir leaves out what is not the SDK's public API: internal packages, binaries, examples,
// test data, and directories that are modules of their own.
func skipDir(path string) bool {
	base := filepath.Base(path)
	switch base {
	case "internal", "cmd", "examples", "testdata", "hack":
		return true
	}
	if strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_") {
		return true
	}
	_, err := os.Stat(filepath.Join(path, "go.mod"))
	return err == nil
}

type leak struct {
	pos       token.Pos
	name, typ string
}

// internalLeaks finds the exported declarations of f whose types name an internal package.
func internalLeaks(f *ast.File) []leak {
	internal := map[string]bool{}
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if !strings.Contains("/"+p+"/", "/internal/") {
			continue
		}
		name := p[strings.LastIndex(p, "/")+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		internal[name] = true
	}
	if len(internal) == 0 {
		return nil
	}
	var out []leak
	check := func(name string, n ast.Node) {
		if n == nil {
			return
		}
		ast.Inspect(n, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if x, ok := sel.X.(*ast.Ident); ok && internal[x.Name] {
					out = append(out, leak{sel.Pos(), name, x.Name + "." + sel.Sel.Name})
				}
			}
			return true
		})
	}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() || (d.Recv != nil && !exportedReceiver(d.Recv)) {
				continue
			}
			check(d.Name.Name, d.Type)
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					if s.Name.IsExported() {
						checkType(s.Name.Name, s.Type, check)
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.IsExported() {
							check(n.Name, s.Type)
						}
					}
				}
			}
		}
	}
	return out
}

// checkType checks a type declaration, looking only at the exported fields of a struct.
func checkType(name string, typ ast.Expr, check func(string, ast.Node)) {
	st, ok := typ.(*ast.StructType)
	if !ok {
		check(name, typ)
		return
	}
	for _, field := range st.Fields.List {
		if len(field.Names) == 0 {
			check(name+" (embedded)", field.Type)
			continue
		}
		for _, n := range field.Names {
			if n.IsExported() {
				check(name+"."+n.Name, field.Type)
			}
		}
	}
}

func exportedReceiver(recv *ast.FieldList) bool {
	if len(recv.List) == 0 {
		return false
	}
	t := recv.List[0].Type
	if star, ok := t.(*ast.StarExpr); ok {
		t = star.X
	}
	switch x := t.(type) {
	case *ast.IndexExpr:
		t = x.X
	case *ast.IndexListExpr:
		t = x.X
	}
	id, ok := t.(*ast.Ident)
	return ok && id.IsExported()
}
