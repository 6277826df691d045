package email

import (
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
)

// Sanitize makes an e-mail's HTML body safe to show in the console: bluemonday's UGC policy
// (no scripts, styles, forms, frames or event handlers; URLs only http, https and mailto),
// links get rel="nofollow noreferrer noopener" and open in a new tab so a link in a customer's
// mail can neither reach back into the console nor learn its address, and images load only
// from http(s) or cid: (inline parts, which the console maps to the message's attachments).
func Sanitize(s string) string { return policy().Sanitize(s) }

// policy is built once: a bluemonday policy is safe for concurrent use once configured.
var policy = sync.OnceValue(func() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	// Relative URLs mean nothing in a mail and would resolve against the console.
	p.AllowRelativeURLs(false)
	p.AllowURLSchemes("cid")
	p.RequireNoFollowOnLinks(true)
	p.RequireNoReferrerOnLinks(true)
	p.AddTargetBlankToFullyQualifiedLinks(true)
	// The URL scheme list is shared by links and images; an image from a mailto: (or a cid:
	// anywhere but an image, which is harmless) is blanked here since bluemonday cannot give
	// img its own schemes.
	p.RewriteSrc(func(u *url.URL) {
		switch strings.ToLower(u.Scheme) {
		case "http", "https", "cid":
		default:
			*u = url.URL{}
		}
	})
	return p
})

// HTMLToText renders an HTML body as plain text for previews, notifications and search: the
// text of the document with line breaks for block elements, without scripts, styles or the
// head.
func HTMLToText(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var b strings.Builder
	skip, pre := 0, 0
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return tidyRendered(b.String())
		case html.TextToken:
			if skip > 0 {
				continue
			}
			t := string(z.Text())
			t = strings.ReplaceAll(t, "\u00a0", " ")
			if pre == 0 {
				t = spaces.ReplaceAllString(t, " ")
			}
			b.WriteString(t)
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			tag := string(name)
			switch tag {
			case "script", "style", "head", "title", "template", "noscript":
				if tt == html.StartTagToken {
					skip++
				} else if tt == html.EndTagToken && skip > 0 {
					skip--
				}
				continue
			case "pre":
				if tt == html.StartTagToken {
					pre++
				} else if tt == html.EndTagToken && pre > 0 {
					pre--
				}
			}
			if skip > 0 {
				continue
			}
			switch tag {
			case "br":
				b.WriteString("\n")
			case "li":
				if tt == html.StartTagToken {
					b.WriteString("\n- ")
				}
			case "td", "th":
				if tt == html.EndTagToken {
					b.WriteString("\t")
				}
			case "p", "div", "tr", "table", "ul", "ol", "blockquote", "pre", "hr", "section", "article",
				"header", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "dl", "dt", "dd", "address":
				b.WriteString("\n")
			}
		}
	}
}

var (
	spaces     = regexp.MustCompile(`[ \t\r\n\f]+`)
	blankLines = regexp.MustCompile(`\n{3,}`)
)

// tidyRendered trims every line and keeps at most one blank line in a row.
func tidyRendered(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Trim(l, " \t\u00a0")
	}
	s = strings.Join(lines, "\n")
	return strings.TrimSpace(blankLines.ReplaceAllString(s, "\n\n"))
}
