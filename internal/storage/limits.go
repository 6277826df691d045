package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"slices"
	"strings"
	"unicode/utf8"
)

// Limits is the attachment policy: how large, and which content types. The type is decided by
// the bytes, never by the name or the type a sender declares, since both are the sender's word;
// those only choose between types the bytes agree with (CSV versus plain text, a .docx versus a
// bare zip).
//
// Refused whatever Allowed says:
//   - executables and scripts by content (Windows PE, ELF, Mach-O, Java classes, WebAssembly,
//     Android dex, Windows shortcuts, "#!" scripts) and by extension (.exe, .bat, .js, .sh, ...),
//     even when the other looks harmless;
//   - HTML, XML and SVG, by content, extension or declared type. Attachments are shown inline
//     in the console from our own origin, where markup could run script as the agent; a sender
//     who needs a page can send a PDF.
//   - bare archives (zip, rar, gzip, 7z): they hide what they carry from these checks. A zip is
//     accepted only as an Office or OpenDocument file with the matching extension.
//   - legacy Office files (OLE) are accepted only with a .doc/.xls/.ppt extension, since the same
//     container is also a Windows installer (.msi).
//
// Callers serve a stored attachment with the type Check returned and
// "X-Content-Type-Options: nosniff", so a browser never second-guesses it.
type Limits struct {
	// MaxBytes is the largest attachment; 0 means DefaultMaxBytes.
	MaxBytes int64
	// Allowed lists media types ("image/png") or families ("image/*"); nil means
	// DefaultAllowed (an empty, non-nil list accepts nothing). A zero Limits is therefore the
	// default policy.
	Allowed []string
}

// DefaultMaxBytes is 20 MiB: room for phone photos, voice notes, short videos and scanned
// documents, while one upload stays cheap to receive and store.
const DefaultMaxBytes = 20 << 20

// sniffLen is how much of a file Check looks at (all http.DetectContentType reads).
const sniffLen = 512

// Office and OpenDocument types, by the extension that makes a zip or OLE file one of them.
var officeTypes = map[string]string{
	".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
	".odt":  "application/vnd.oasis.opendocument.text",
	".ods":  "application/vnd.oasis.opendocument.spreadsheet",
	".odp":  "application/vnd.oasis.opendocument.presentation",
	".doc":  "application/msword",
	".xls":  "application/vnd.ms-excel",
	".ppt":  "application/vnd.ms-powerpoint",
}

// DefaultAllowed is what customers send a contact center: photos and screenshots, PDFs,
// text and CSV, voice notes and short videos from phones, Office documents.
func DefaultAllowed() []string {
	types := []string{
		"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/heic", "image/heif", "image/avif",
		"application/pdf",
		"text/plain", "text/csv",
		"audio/mpeg", "audio/mp4", "audio/aac", "audio/ogg", "audio/wav", "audio/amr", "audio/flac", "audio/webm",
		"video/mp4", "video/quicktime", "video/webm", "video/3gpp", "video/ogg",
	}
	for _, t := range officeTypes {
		types = append(types, t)
	}
	slices.Sort(types)
	return types
}

// DefaultLimits is the policy for attachments: 20 MiB and DefaultAllowed.
func DefaultLimits() Limits {
	return Limits{MaxBytes: DefaultMaxBytes, Allowed: DefaultAllowed()}
}

var (
	// ErrTooLarge is returned (wrapped) for an attachment over MaxBytes.
	ErrTooLarge = errors.New("storage: attachment too large")
	// ErrType is returned (wrapped) for an attachment whose type is refused; the message says why.
	ErrType = errors.New("storage: attachment type not accepted")
)

func (l Limits) maxBytes() int64 {
	if l.MaxBytes <= 0 {
		return DefaultMaxBytes
	}
	return l.MaxBytes
}

// CheckSize refuses a known size over MaxBytes; a negative size (unknown) passes, and the
// reader should then go through Cap.
func (l Limits) CheckSize(size int64) error {
	if limit := l.maxBytes(); size > limit {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, size, limit)
	}
	return nil
}

// Cap returns a reader that fails with ErrTooLarge once r yields more than MaxBytes, for
// streams whose size is not known up front. A Store.Put reading from it then stores nothing.
func (l Limits) Cap(r io.Reader) io.Reader {
	return &capReader{r: r, left: l.maxBytes(), max: l.maxBytes()}
}

type capReader struct {
	r         io.Reader
	left, max int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, c.max)
	}
	// Read one byte past the limit so a file of exactly MaxBytes passes.
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n + int(c.left), fmt.Errorf("%w: more than %d bytes", ErrTooLarge, c.max)
	}
	return n, err
}

// Sniff reads the head Check needs from r and returns it with a reader that yields the whole
// content again, head included.
func Sniff(r io.Reader) (head []byte, all io.Reader, err error) {
	head = make([]byte, sniffLen)
	n, err := io.ReadFull(r, head)
	head = head[:n]
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, nil, err
	}
	return head, io.MultiReader(bytes.NewReader(head), r), nil
}

// Check decides an attachment's content type from its first bytes (head; at least the first
// 512 unless the file is shorter), its file name and the sender's declared type, and refuses
// it with ErrType and the reason when the policy does not accept it. The returned type is the
// one to store and serve.
func (l Limits) Check(filename, declaredType string, head []byte) (string, error) {
	name := cleanName(filename)
	ext := strings.ToLower(path.Ext(name))
	declared := baseType(declaredType)
	if len(head) > sniffLen {
		head = head[:sniffLen]
	}
	refuse := func(format string, args ...any) (string, error) {
		label := filename
		if label == "" {
			label = "attachment"
		}
		return "", fmt.Errorf("%w: %q %s", ErrType, label, fmt.Sprintf(format, args...))
	}

	if why := extensionRisk(ext); why != "" {
		return refuse("has the extension %s (%s)", ext, why)
	}
	if why, bad := badDeclared(declared); bad {
		return refuse("is declared as %s (%s)", declared, why)
	}
	sniffed := http.DetectContentType(head)
	if why := executable(head, sniffed); why != "" {
		return refuse("is %s", why)
	}

	ct := sniffed
	switch base := baseType(sniffed); {
	case base == "text/html":
		return refuse("is HTML, which could run script when displayed")
	case base == "text/xml":
		return refuse("is XML (possibly SVG or XHTML), which could run script when displayed")
	case strings.HasPrefix(base, "text/plain"):
		if markup(head) {
			return refuse("is text containing HTML or SVG markup, which could run script when displayed")
		}
		charset := textCharset(head, sniffed)
		base = "text/plain"
		if ext == ".csv" || ext == ".tsv" || declared == "text/csv" {
			base = "text/csv"
		}
		ct = base
		if charset != "" {
			ct = mime.FormatMediaType(base, map[string]string{"charset": charset})
		}
	case base == "application/zip":
		t, ok := officeTypes[ext]
		if !ok || !zipBased(ext) {
			return refuse("is a zip archive; only Office (.docx, .xlsx, .pptx) and OpenDocument (.odt, .ods, .odp) files are accepted")
		}
		if why := notOffice(head, ext, t); why != "" {
			return refuse("%s", why)
		}
		ct = t
	case base == "application/ogg":
		ct = "audio/ogg"
		if ext == ".ogv" || declared == "video/ogg" {
			ct = "video/ogg"
		}
	case base == "video/webm":
		if ext == ".weba" || declared == "audio/webm" {
			ct = "audio/webm"
		}
	case base == "audio/wave":
		ct = "audio/wav"
	case base == "video/mp4":
		if t := ftypType(head); t != "" {
			ct = t
		}
	case base == "application/octet-stream":
		if bytes.HasPrefix(head, []byte(oleMagic)) {
			t, ok := officeTypes[ext]
			if !ok || zipBased(ext) {
				return refuse("is an OLE file (legacy Office or a Windows installer); only .doc, .xls and .ppt are accepted")
			}
			ct = t
			break
		}
		ct = sniffMore(head)
		if ct == "" {
			return refuse("is binary data of no accepted type")
		}
	case base == "application/x-gzip" || base == "application/x-rar-compressed":
		return refuse("is a compressed archive (%s), whose contents cannot be checked", base)
	}

	if !l.allows(baseType(ct)) {
		return refuse("is %s, which is not an accepted type", baseType(ct))
	}
	return ct, nil
}

func (l Limits) allows(base string) bool {
	allowed := l.Allowed
	if allowed == nil {
		allowed = DefaultAllowed()
	}
	for _, a := range allowed {
		a = strings.ToLower(strings.TrimSpace(a))
		if a == base {
			return true
		}
		if fam, ok := strings.CutSuffix(a, "/*"); ok && strings.HasPrefix(base, fam+"/") {
			return true
		}
	}
	return false
}

// cleanName is the last element of a path from any OS, without the trailing dots and spaces
// Windows drops (so "run.exe." is still an .exe).
func cleanName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	return strings.TrimRight(name, ". ")
}

func baseType(ct string) string {
	if ct == "" {
		return ""
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	base, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(base))
}

// extensionRisk says why a file with this extension is refused, or "": these open as programs
// or as active content on the agent's machine or in a browser, whatever the bytes are.
func extensionRisk(ext string) string {
	switch ext {
	case ".exe", ".dll", ".com", ".scr", ".pif", ".cpl", ".sys", ".drv", ".ocx",
		".msi", ".msp", ".mst", ".msix", ".appx", ".appxbundle", ".application", ".gadget",
		".app", ".dmg", ".pkg", ".deb", ".rpm", ".apk", ".aab", ".ipa", ".xap", ".elf", ".bin",
		".run", ".so", ".dylib", ".jar", ".class", ".wasm", ".lnk", ".url", ".scf", ".inf",
		".reg", ".iso", ".img", ".vhd", ".vhdx":
		return "an executable"
	case ".bat", ".cmd", ".ps1", ".psm1", ".psd1", ".vbs", ".vbe", ".js", ".jse", ".mjs",
		".cjs", ".wsf", ".wsh", ".wsc", ".hta", ".sh", ".bash", ".zsh", ".csh", ".ksh", ".fish",
		".command", ".py", ".pyw", ".pyc", ".pl", ".rb", ".php", ".phtml", ".jsp", ".asp",
		".aspx", ".cgi", ".applescript", ".scpt", ".workflow", ".action", ".lua", ".tcl":
		return "a script"
	case ".html", ".htm", ".xhtml", ".xht", ".shtml", ".mht", ".mhtml",
		".svg", ".svgz", ".xml", ".xsl", ".xslt", ".swf":
		return "active web content"
	case ".docm", ".dotm", ".xlsm", ".xltm", ".xlam", ".pptm", ".potm", ".ppam", ".ppsm", ".sldm":
		return "a macro-enabled Office file"
	case ".zip", ".rar", ".7z", ".gz", ".tgz", ".bz2", ".xz", ".tar", ".cab", ".arj", ".z", ".lz", ".zst":
		return "an archive whose contents cannot be checked"
	}
	return ""
}

// badDeclared refuses declared types that say "program" or "markup": if the sender calls it
// that, whatever the bytes look like, something downstream may treat it as one.
func badDeclared(t string) (string, bool) {
	switch t {
	case "text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml":
		return "markup could run script when displayed", true
	case "text/javascript", "application/javascript", "application/x-javascript", "application/ecmascript",
		"application/x-sh", "application/x-csh", "text/x-shellscript", "application/x-python",
		"text/x-python", "application/x-perl", "application/x-php", "application/x-httpd-php",
		"application/hta", "text/vbscript":
		return "a script", true
	case "application/x-msdownload", "application/x-msdos-program", "application/x-dosexec",
		"application/vnd.microsoft.portable-executable", "application/x-executable",
		"application/x-elf", "application/x-mach-binary", "application/x-sharedlib",
		"application/java-archive", "application/x-java-archive", "application/vnd.android.package-archive",
		"application/x-ms-installer", "application/x-msi", "application/wasm":
		return "an executable", true
	}
	return "", false
}

// executable names the kind of program head starts with, or "".
func executable(head []byte, sniffed string) string {
	has := func(p string) bool { return bytes.HasPrefix(head, []byte(p)) }
	switch {
	case has("\x7fELF"):
		return "an ELF executable"
	case has("\xfe\xed\xfa\xce"), has("\xfe\xed\xfa\xcf"), has("\xce\xfa\xed\xfe"), has("\xcf\xfa\xed\xfe"):
		return "a Mach-O executable"
	case has("\xca\xfe\xba\xbe"):
		return "a Mach-O universal binary or Java class"
	case has("dex\n"):
		return "an Android dex executable"
	case has("\x4c\x00\x00\x00\x01\x14\x02\x00"):
		return "a Windows shortcut"
	case baseType(sniffed) == "application/wasm":
		return "a WebAssembly module"
	// "MZ" alone starts ordinary text too ("MZ Motors invoice"); a real header has binary bytes.
	case has("MZ") && !strings.HasPrefix(sniffed, "text/"):
		return "a Windows executable"
	case has("#!") && !has("#!AMR"):
		return "a script (#! line)"
	}
	return ""
}

// markup finds HTML or SVG that does not start the file (which DetectContentType would have
// called HTML) but that a lenient viewer could still render.
func markup(head []byte) bool {
	lower := bytes.ToLower(head)
	for _, tag := range []string{"<html", "<script", "<svg", "<iframe", "<!doctype html", "<body", "<object", "<embed"} {
		if bytes.Contains(lower, []byte(tag)) {
			return true
		}
	}
	return false
}

// textCharset keeps DetectContentType's charset when a BOM decided it and otherwise says utf-8
// only when the text is UTF-8: much text arrives in GBK or Latin-1, and a wrong charset garbles
// it for display where none lets the viewer guess.
func textCharset(head []byte, sniffed string) string {
	_, params, _ := mime.ParseMediaType(sniffed)
	cs := params["charset"]
	if cs != "utf-8" {
		return cs
	}
	// A full head may end inside a multi-byte character; a shorter one is the whole file.
	cuts := 1
	if len(head) == sniffLen {
		cuts = utf8.UTFMax
	}
	for cut := 0; cut < cuts; cut++ {
		if utf8.Valid(head[:len(head)-cut]) {
			return "utf-8"
		}
	}
	return ""
}

// notOffice says why a zip named like an Office file is something else, or "". Java and
// Android packages are zips too and would otherwise pass under a .docx name.
func notOffice(head []byte, ext, want string) string {
	for _, marker := range []string{"META-INF/MANIFEST.MF", "AndroidManifest.xml", "classes.dex"} {
		if bytes.Contains(head, []byte(marker)) {
			return "is a Java or Android package named " + ext
		}
	}
	// An OpenDocument file starts with an uncompressed "mimetype" entry holding its type.
	if strings.HasPrefix(want, "application/vnd.oasis.") {
		const nameAt = 30
		if len(head) < nameAt+8 || string(head[nameAt:nameAt+8]) != "mimetype" ||
			!bytes.Contains(head, []byte(want)) {
			return "is a zip archive without the OpenDocument mimetype of " + ext
		}
	}
	return ""
}

// ftypType reads an ISO media file's major brand (DetectContentType calls them all video/mp4,
// or nothing when "mp4" is not among the brands).
func ftypType(head []byte) string {
	if len(head) < 12 || string(head[4:8]) != "ftyp" {
		return ""
	}
	switch brand := string(head[8:12]); brand {
	case "M4A ", "M4B ", "M4P ", "F4A ":
		return "audio/mp4"
	case "qt  ":
		return "video/quicktime"
	case "heic", "heix", "heim", "heis", "hevc", "hevx":
		return "image/heic"
	case "mif1", "msf1", "avif":
		if brand == "avif" {
			return "image/avif"
		}
		return "image/heif"
	case "isom", "iso2", "iso4", "iso5", "iso6", "mp41", "mp42", "avc1", "dash", "M4V ", "f4v ", "mmp4":
		return "video/mp4"
	default:
		if strings.HasPrefix(brand, "3gp") || strings.HasPrefix(brand, "3g2") {
			return "video/3gpp"
		}
	}
	return ""
}

// oleMagic starts a Compound File: legacy Office documents, but also .msi installers.
const oleMagic = "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

func zipBased(ext string) bool {
	switch ext {
	case ".docx", ".xlsx", ".pptx", ".odt", ".ods", ".odp":
		return true
	}
	return false
}

// sniffMore recognises phone audio and video formats DetectContentType leaves as octet-stream,
// or returns "".
func sniffMore(head []byte) string {
	has := func(p string) bool { return bytes.HasPrefix(head, []byte(p)) }
	switch {
	case has("#!AMR"):
		return "audio/amr"
	case has("fLaC"):
		return "audio/flac"
	case len(head) >= 2 && head[0] == 0xff && head[1]&0xf6 == 0xf0:
		return "audio/aac" // ADTS frame header
	case len(head) >= 2 && head[0] == 0xff && head[1]&0xe0 == 0xe0 && head[1]&0x06 != 0:
		return "audio/mpeg" // MPEG audio frame without an ID3 tag
	}
	return ftypType(head)
}
