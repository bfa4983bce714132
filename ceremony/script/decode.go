package script

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with a script, located by its YAML path
// ("participants[2].role") and line.
type Problem struct {
	Path string
	Line int
	Msg  string
}

func (p Problem) String() string {
	loc := p.Path
	if loc == "" {
		loc = "(document)"
	}
	if p.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", p.Line, loc, p.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, p.Msg)
}

// Problems is every problem found in a script; it is the error Parse returns.
type Problems []Problem

func (ps Problems) Error() string {
	if len(ps) == 1 {
		return ps[0].String()
	}
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = "  " + p.String()
	}
	return fmt.Sprintf("%d problems:\n%s", len(ps), strings.Join(lines, "\n"))
}

var timeType = reflect.TypeFor[time.Time]()

// decodeStrict decodes raw into out after checking the node tree against
// out's type: unknown and duplicate keys, anchors, aliases, merge keys and
// values of the wrong type are all collected, each with its path, instead of
// stopping at the first as yaml.v3 does.
func decodeStrict(raw []byte, out any) (*yaml.Node, Problems) {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, Problems{{Msg: "the script is empty"}}
		}
		return nil, Problems{{Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		// A second document would be ignored by the engine but read by a
		// reviewer: refuse it.
		return nil, Problems{{Line: extra.Line, Msg: "only one YAML document is allowed (found a second '---')"}}
	}
	var ps Problems
	root := doc.Content[0]
	check(root, reflect.TypeOf(out).Elem(), "", &ps)
	if len(ps) > 0 {
		return root, ps
	}
	if err := root.Decode(out); err != nil {
		return root, Problems{{Msg: err.Error()}}
	}
	return root, nil
}

// lineOf finds the line of the node at path ("a.b[2].c"), or of its deepest
// existing ancestor when the key is missing, so validation problems point at
// the right place in the file.
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n == nil {
		return 0
	}
	line := n.Line
	for _, part := range strings.Split(path, ".") {
		name, idx, _ := strings.Cut(part, "[")
		if name != "" {
			next := (*yaml.Node)(nil)
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == name {
						next = n.Content[i+1]
						line = n.Content[i].Line
						break
					}
				}
			}
			if next == nil {
				return line
			}
			n = next
		}
		for idx != "" {
			var num string
			num, idx, _ = strings.Cut(idx, "]")
			idx = strings.TrimPrefix(idx, "[")
			i, err := strconv.Atoi(num)
			if err != nil || n.Kind != yaml.SequenceNode || i >= len(n.Content) {
				return line
			}
			n = n.Content[i]
			line = n.Line
		}
	}
	return line
}

func check(n *yaml.Node, t reflect.Type, path string, ps *Problems) {
	add := func(n *yaml.Node, msg string, a ...any) {
		*ps = append(*ps, Problem{Path: path, Line: n.Line, Msg: fmt.Sprintf(msg, a...)})
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		// A reviewer reads a script top to bottom; anchors make one value
		// silently stand for another.
		add(n, "anchors and aliases are not allowed in a ceremony script")
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value; validation decides whether it was required
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
		var v time.Time
		if n.Kind != yaml.ScalarNode || n.Decode(&v) != nil {
			add(n, "expected a date and time such as 2026-12-01T00:00:00Z, got %s", describe(n))
		}
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			add(n, "expected a mapping of keys to values, got %s", describe(n))
			return
		}
		fields := yamlFields(t)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			kp := join(path, k.Value)
			if k.Kind != yaml.ScalarNode {
				*ps = append(*ps, Problem{Path: path, Line: k.Line, Msg: "a key must be a plain word"})
				continue
			}
			if k.Value == "<<" {
				*ps = append(*ps, Problem{Path: kp, Line: k.Line, Msg: "merge keys are not allowed in a ceremony script"})
				continue
			}
			if first, dup := seen[k.Value]; dup {
				*ps = append(*ps, Problem{Path: kp, Line: k.Line, Msg: fmt.Sprintf("duplicate key (first set on line %d)", first)})
				continue
			}
			seen[k.Value] = k.Line
			ft, ok := fields[k.Value]
			if !ok {
				*ps = append(*ps, Problem{Path: kp, Line: k.Line, Msg: fmt.Sprintf("unknown key (allowed here: %s)", strings.Join(sortedKeys(fields), ", "))})
				continue
			}
			check(v, ft, kp, ps)
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			add(n, "expected a list, got %s", describe(n))
			return
		}
		for i, e := range n.Content {
			check(e, t.Elem(), path+"["+strconv.Itoa(i)+"]", ps)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			add(n, "expected %s, got %s", kindName(t), describe(n))
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			add(n, "expected %s, got %q", kindName(t), n.Value)
		}
	}
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

func sortedKeys(m map[string]reflect.Type) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "something else"
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32:
		return "a whole number"
	case reflect.String:
		return "text"
	}
	return t.String()
}
