package rating

import (
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoFloats keeps binary floating point out of money code. The syntactic pass catches the
// obvious spellings; the type-checked pass also catches floats that are never spelled out,
// such as time.Duration.Hours() or strconv.ParseFloat results.
func TestNoFloats(t *testing.T) {
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.Ident:
				switch n.Name {
				case "float32", "float64", "complex64", "complex128":
					t.Errorf("%s: %s", fset.Position(n.Pos()), n.Name)
				}
			case *ast.SelectorExpr:
				if strings.Contains(n.Sel.Name, "Float") {
					t.Errorf("%s: selector %s", fset.Position(n.Pos()), n.Sel.Name)
				}
			case *ast.BasicLit:
				if n.Kind == token.FLOAT || n.Kind == token.IMAG {
					t.Errorf("%s: float literal %s", fset.Position(n.Pos()), n.Value)
				}
			}
			return true
		})
	}
	if len(files) == 0 {
		t.Fatal("no package files found")
	}
	info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}}
	conf := types.Config{Importer: importer.ForCompiler(fset, "source", nil)}
	if _, err := conf.Check("rating", fset, files, info); err != nil {
		t.Fatalf("type-check: %v", err)
	}
	for expr, tv := range info.Types {
		if b, ok := tv.Type.Underlying().(*types.Basic); ok && b.Info()&(types.IsFloat|types.IsComplex) != 0 {
			t.Errorf("%s: expression of type %s", fset.Position(expr.Pos()), tv.Type)
		}
	}
}
