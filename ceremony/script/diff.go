package script

import (
	"fmt"
	"reflect"
	"strings"
	"time"
)

// Diff lists the YAML paths at which two scripts differ ("quorum.threshold",
// "participants[2].name"), in the order of the script language. A list that
// is absent and an empty one are the same; an input or section that is
// absent and one that is present but empty are not. Times are the same when
// they are the same instant written with the same UTC offset. Path, Dir,
// SHA256 and Raw (not part of the YAML) are not compared.
func Diff(a, b *Script) []string {
	var out []string
	diffValue(reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem(), "", &out)
	return out
}

func diffValue(a, b reflect.Value, path string, out *[]string) {
	if a.Type() == timeType {
		ta, tb := a.Interface().(time.Time), b.Interface().(time.Time)
		if !ta.Equal(tb) || ta.Format(time.RFC3339Nano) != tb.Format(time.RFC3339Nano) {
			*out = append(*out, path)
		}
		return
	}
	switch a.Kind() {
	case reflect.Pointer:
		switch {
		case a.IsNil() && b.IsNil():
		case a.IsNil() != b.IsNil():
			*out = append(*out, path)
		default:
			diffValue(a.Elem(), b.Elem(), path, out)
		}
	case reflect.Struct:
		for _, f := range fields(a.Type()) {
			diffValue(a.FieldByIndex(f.Index), b.FieldByIndex(f.Index), join(path, yamlName(f)), out)
		}
	case reflect.Slice:
		if a.Len() != b.Len() {
			*out = append(*out, path)
			return
		}
		for i := range a.Len() {
			diffValue(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i), out)
		}
	default:
		if !a.Equal(b) {
			*out = append(*out, path)
		}
	}
}

// LineDiff finds the first line (counted from 1) at which two texts differ,
// and that line in each; 0 when they are the same. It says where a file is
// not in the canonical form Encode writes.
func LineDiff(a, b []byte) (line int, inA, inB string) {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < len(la) || i < len(lb); i++ {
		var x, y string
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if x != y {
			return i + 1, x, y
		}
	}
	return 0, "", ""
}
