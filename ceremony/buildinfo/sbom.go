package buildinfo

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// The SBOM is CycloneDX 1.5 JSON built from what the Go linker wrote into
// the binary (debug/buildinfo): every module with its version and go.sum
// checksum, the toolchain and the build settings. It is read from the
// artefact itself, so it cannot drift from a hand-kept list, and it works
// for a binary of another platform (the Windows .exe read on Linux).
// Nothing in it depends on the time it was made: the same binary always
// gives the same SBOM bytes.

type cdxBOM struct {
	BOMFormat    string          `json:"bomFormat"`
	SpecVersion  string          `json:"specVersion"`
	SerialNumber string          `json:"serialNumber"`
	Version      int             `json:"version"`
	Metadata     cdxMetadata     `json:"metadata"`
	Components   []cdxComponent  `json:"components"`
	Dependencies []cdxDependency `json:"dependencies"`
}

type cdxMetadata struct {
	Tools     cdxTools     `json:"tools"`
	Component cdxComponent `json:"component"`
}

type cdxTools struct {
	Components []cdxComponent `json:"components"`
}

type cdxComponent struct {
	Type       string        `json:"type"`
	BOMRef     string        `json:"bom-ref,omitempty"`
	Name       string        `json:"name"`
	Version    string        `json:"version,omitempty"`
	PURL       string        `json:"purl,omitempty"`
	Hashes     []cdxHash     `json:"hashes,omitempty"`
	Properties []cdxProperty `json:"properties,omitempty"`
}

type cdxHash struct {
	Alg     string `json:"alg"`
	Content string `json:"content"`
}

type cdxProperty struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type cdxDependency struct {
	Ref       string   `json:"ref"`
	DependsOn []string `json:"dependsOn"`
}

func purl(path, version string, qualifiers string) string {
	// Module paths are lower-case-insensitive only by convention; purl
	// wants each path segment escaped.
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	p := "pkg:golang/" + strings.Join(segs, "/")
	if version != "" {
		p += "@" + url.PathEscape(version)
	}
	if qualifiers != "" {
		p += "?" + qualifiers
	}
	return p
}

// WriteSBOM writes the CycloneDX SBOM of the Go binary at path to w.
func WriteSBOM(w io.Writer, path string) error {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read Go build information of %s: %w", path, err)
	}
	sum, err := hashFile(path)
	if err != nil {
		return fmt.Errorf("hash %s: %w", path, err)
	}
	settings := map[string]string{}
	var props []cdxProperty
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
		props = append(props, cdxProperty{Name: "go:build:" + s.Key, Value: s.Value})
	}
	props = append([]cdxProperty{{Name: "go:toolchain", Value: bi.GoVersion}, {Name: "file", Value: filepath.Base(path)}}, props...)
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	version, commit, ok := parseStamp(raw)
	if !ok {
		version = bi.Main.Version
	}
	if commit != "" {
		props = append(props, cdxProperty{Name: "vcs:commit", Value: commit})
	}
	qual := ""
	if settings["GOOS"] != "" {
		qual = "goos=" + settings["GOOS"] + "&goarch=" + settings["GOARCH"]
	}
	main := cdxComponent{
		Type: "application", BOMRef: purl(bi.Main.Path, version, qual), Name: bi.Main.Path, Version: version,
		PURL: purl(bi.Main.Path, version, qual), Hashes: []cdxHash{{Alg: "SHA-256", Content: sum}}, Properties: props,
	}
	std := cdxComponent{
		Type: "library", Name: "stdlib", Version: bi.GoVersion, PURL: purl("stdlib", bi.GoVersion, ""),
		BOMRef: purl("stdlib", bi.GoVersion, ""),
	}
	comps := []cdxComponent{std}
	dep := cdxDependency{Ref: main.BOMRef, DependsOn: []string{std.BOMRef}}
	for _, d := range bi.Deps {
		m := d
		var mp []cdxProperty
		if d.Replace != nil {
			mp = append(mp, cdxProperty{Name: "go:module:replaces", Value: d.Path + "@" + d.Version})
			m = d.Replace
		}
		if m.Sum != "" {
			// The go.sum "h1:" hash of the module tree: checkable against
			// sum.golang.org, and what the Go toolchain verified at build.
			mp = append(mp, cdxProperty{Name: "go:module:sum", Value: m.Sum})
		}
		c := cdxComponent{Type: "library", Name: m.Path, Version: m.Version, PURL: purl(m.Path, m.Version, "type=module"), Properties: mp}
		c.BOMRef = c.PURL
		comps = append(comps, c)
		dep.DependsOn = append(dep.DependsOn, c.BOMRef)
	}
	sumBytes, _ := hex.DecodeString(sum)
	bom := cdxBOM{
		BOMFormat: "CycloneDX", SpecVersion: "1.5", Version: 1,
		SerialNumber: "urn:uuid:" + uuidFrom(sumBytes),
		Metadata: cdxMetadata{
			Tools:     cdxTools{Components: []cdxComponent{{Type: "application", Name: "keyceremony version --sbom", Version: Version()}}},
			Component: main,
		},
		Components:   comps,
		Dependencies: []cdxDependency{dep},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // purl qualifiers keep their '&'
	return enc.Encode(bom)
}

// uuidFrom makes a name-based (version 5 style) UUID from the binary's hash,
// so the serial number is stable for one binary and differs between binaries.
func uuidFrom(binarySHA256 []byte) string {
	h := sha256.Sum256(append([]byte("keyceremony sbom\n"), binarySHA256...))
	u := h[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
