// Package console serves the web console's built assets.
package console

import "embed"

//go:embed all:dist
var Dist embed.FS
