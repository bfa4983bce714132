package assets

import "embed"

// Ceremonies holds the ceremony script templates, one per ceremony kind. They
// are what `keyceremony ceremony template KIND` prints and what the ceremony
// tests run, so a template that stops validating fails the build's tests.
//
//go:embed ceremonies/*.yaml
var Ceremonies embed.FS
