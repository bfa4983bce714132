// Package assets holds what the binary embeds: the application icon, the
// ceremony script templates (ceremonies.go), and fonts for PDFs.
package assets

import _ "embed"

// Icon is the application icon (PNG, 512x512), also named in FyneApp.toml.
//
//go:embed icon.png
var Icon []byte
