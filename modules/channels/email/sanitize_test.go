package email

import (
	"strings"
	"testing"
)

func TestSanitizeHostileHTML(t *testing.T) {
	cases := []struct {
		name, in string
		want     string   // exact output when set
		absent   []string // substrings that must not survive (case-insensitive)
		present  []string
	}{
		{name: "script tag", in: `<p>hi</p><script>alert(document.cookie)</script>`, want: `<p>hi</p>`},
		{name: "script with odd casing and attributes", in: `<ScRiPt src="https://evil.example/x.js"></ScRiPt>ok`, want: `ok`},
		{name: "event handlers", in: `<img src="https://img.example/a.png" onerror="alert(1)" onload=alert(2)><b onmouseover="x()">b</b>`,
			want: `<img src="https://img.example/a.png"><b>b</b>`},
		{name: "javascript: link", in: `<a href="javascript:alert(1)">click</a>`, want: `click`},
		{name: "javascript: link obfuscated", in: `<a href="jav&#x09;ascript:alert(1)">x</a><a href=" JaVaScRiPt:alert(1)">y</a>`, want: `xy`},
		{name: "vbscript and data links", in: `<a href="vbscript:msgbox(1)">v</a><a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">d</a>`, want: `vd`},
		{name: "data: image", in: `<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">`, absent: []string{"data:", "src="}},
		{name: "iframe object embed", in: `<iframe src="https://evil.example"></iframe><object data="x.swf"></object><embed src="x.swf">t`, want: `t`},
		{name: "style tag and attribute", in: `<style>body{background:url(javascript:alert(1))}</style><p style="background:url(javascript:alert(1))">p</p>`, want: `<p>p</p>`},
		{name: "forms", in: `<form action="https://evil.example/steal"><input name="password"><button>Go</button></form>`, absent: []string{"<form", "<input", "<button", "action"}},
		{name: "meta refresh and base", in: `<meta http-equiv="refresh" content="0;url=https://evil.example"><base href="https://evil.example/">x`, want: `x`},
		{name: "svg onload", in: `<svg onload="alert(1)"><circle r="1"/></svg>s`, absent: []string{"svg", "onload"}},
		{name: "relative URLs dropped", in: `<a href="/api/v1/admin">a</a><img src="/logo.png">`, absent: []string{"/api/v1/admin", "/logo.png"}},
		{name: "mailto image blanked", in: `<img src="mailto:x@example.com">`, want: `<img src="">`},
		{name: "comment tricks", in: `<!--<script>alert(1)</script>--><p>c</p>`, want: `<p>c</p>`},
		{name: "unclosed attribute breakout", in: `<a href="https://ok.example/" title="x" onclick="alert(1)">t</a>`, absent: []string{"onclick"}},

		{name: "links get nofollow noreferrer noopener and a new tab", in: `<a href="https://shop.example/track?id=1">order</a>`,
			want: `<a href="https://shop.example/track?id=1" rel="nofollow noreferrer noopener" target="_blank">order</a>`},
		{name: "mailto link kept", in: `<a href="mailto:sales@example.com">mail</a>`, present: []string{`href="mailto:sales@example.com"`, `rel="nofollow noreferrer"`}},
		{name: "cid image kept", in: `<img src="cid:logo@x" alt="logo">`, want: `<img src="cid:logo@x" alt="logo">`},
		{name: "http image kept", in: `<img src="http://img.example/a.png">`, want: `<img src="http://img.example/a.png">`},
		{name: "basic formatting kept", in: `<h2>T</h2><p><b>b</b> <i>i</i> <u>u</u> <em>e</em> <strong>s</strong><br></p><ul><li>1</li></ul><ol><li>2</li></ol><blockquote>q</blockquote><pre>code</pre><table><tr><td>c</td></tr></table>`,
			want: `<h2>T</h2><p><b>b</b> <i>i</i> <u>u</u> <em>e</em> <strong>s</strong><br></p><ul><li>1</li></ul><ol><li>2</li></ol><blockquote>q</blockquote><pre>code</pre><table><tr><td>c</td></tr></table>`},
		{name: "text escaped", in: `1 < 2 & "q"`, want: `1 &lt; 2 &amp; &#34;q&#34;`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Sanitize(c.in)
			if c.want != "" && got != c.want {
				t.Errorf("Sanitize(%q)\n got %q\nwant %q", c.in, got, c.want)
			}
			low := strings.ToLower(got)
			for _, a := range append(c.absent, "<script", "javascript:", "onerror", "onload", "onclick") {
				if strings.Contains(low, strings.ToLower(a)) {
					t.Errorf("Sanitize(%q) = %q keeps %q", c.in, got, a)
				}
			}
			for _, p := range c.present {
				if !strings.Contains(got, p) {
					t.Errorf("Sanitize(%q) = %q lacks %q", c.in, got, p)
				}
			}
		})
	}
}

func TestHTMLToText(t *testing.T) {
	cases := []struct{ in, want string }{
		{`<p>a</p><p>b</p>`, "a\n\nb"},
		{`x<br/>y`, "x\ny"},
		{`<table><tr><td>k</td><td>v</td></tr></table>`, "k\tv"},
		{`<pre>  keep   spaces</pre>`, "keep   spaces"},
		{`<div>&lt;tag&gt; &amp; &#20013;&#25991;</div>`, "<tag> & 中文"},
		{`<noscript>no</noscript><template><p>t</p></template>shown`, "shown"},
	}
	for _, c := range cases {
		if got := HTMLToText(c.in); got != c.want {
			t.Errorf("HTMLToText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
