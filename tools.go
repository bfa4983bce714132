//go:build tools

// Package tools pins the modules the project depends on before every package
// that uses them exists, so parallel work never races on go.mod.
package tools

import (
	_ "filippo.io/age"
	_ "fyne.io/fyne/v2/app"
	_ "github.com/aws/aws-sdk-go-v2/config"
	_ "github.com/aws/aws-sdk-go-v2/service/acmpca"
	_ "github.com/aws/aws-sdk-go-v2/service/athena"
	_ "github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	_ "github.com/aws/aws-sdk-go-v2/service/kms"
	_ "github.com/aws/aws-sdk-go-v2/service/s3"
	_ "github.com/cloudflare/circl/secretsharing"
	_ "github.com/jung-kurt/gofpdf"
	_ "github.com/miekg/pkcs11"
	_ "github.com/zmap/zlint/v3"
	_ "golang.org/x/crypto/hkdf"
	_ "golang.org/x/image/font/gofont/goregular"
	_ "golang.org/x/term"
	_ "gopkg.in/yaml.v3"
	_ "modernc.org/sqlite"
)
