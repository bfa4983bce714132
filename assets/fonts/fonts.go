// Package fonts holds the TrueType fonts the PDFs embed (transcripts, share
// cards, audit reports), so no PDF depends on the fonts of the machine that
// renders it. They are the Go fonts (BSD licence, golang.org/x/image): they
// cover Latin, Greek and Cyrillic, enough for principal names and aliases.
package fonts

import (
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"
)

// Regular, Bold and Mono are TrueType font files.
var (
	Regular = goregular.TTF
	Bold    = gobold.TTF
	Mono    = gomono.TTF
)
