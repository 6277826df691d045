package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

var errBroken = errors.New("connection reset")

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errBroken }

// failingPuts are readers a Put must refuse without storing anything.
var failingPuts = []struct {
	name   string
	reader func() io.Reader
	size   int64
	want   error
}{
	{"reader fails", func() io.Reader { return io.MultiReader(strings.NewReader("partial"), failingReader{}) }, 100, errBroken},
	{"reader fails, size unknown", func() io.Reader { return io.MultiReader(strings.NewReader("partial"), failingReader{}) }, -1, errBroken},
	{"shorter than size", func() io.Reader { return strings.NewReader("short") }, 100, ErrSize},
	{"longer than size", func() io.Reader { return strings.NewReader("longer than declared") }, 4, ErrSize},
}

var badKeys = []string{
	"", "/abs/path", "trailing/", "a//b", "../escape", "a/../../b", "a/..", "x..y",
	".hidden", "a/.tmp-123", "./a", "back\\slash", "sp ace", "uni/cödé", "nul\x00",
	"q?x", "pct%2F", "col:on", strings.Repeat("k", 1025),
}

func readAll(t *testing.T, s Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

// files lists every file under dir, relative, temporary ones included.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestValidKey(t *testing.T) {
	for _, key := range badKeys {
		if err := ValidKey(key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidKey(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
	for _, key := range []string{"a", "tenant-1/2026/06/01/0190b5a2-7c1e-7abc-8def-0123456789ab/invoice_v2.final.pdf", "A_b-C.d", strings.Repeat("k", 1024)} {
		if err := ValidKey(key); err != nil {
			t.Errorf("ValidKey(%q) = %v, want nil", key, err)
		}
	}
}

func TestLocalRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "attachments")
	l, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("NewLocal did not create %s: %v", dir, err)
	}

	body := []byte("%PDF-1.7 a small pdf")
	if err := l.Put(ctx, "t1/c1/m1/invoice.pdf", bytes.NewReader(body), int64(len(body)), "application/pdf"); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, l, "t1/c1/m1/invoice.pdf"); !bytes.Equal(got, body) {
		t.Fatalf("Get = %q, want %q", got, body)
	}
	st, err := os.Stat(filepath.Join(dir, "t1", "c1", "m1", "invoice.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, want 0600", st.Mode().Perm())
	}
	if got := files(t, dir); len(got) != 1 || got[0] != "t1/c1/m1/invoice.pdf" {
		t.Fatalf("files after Put = %v, want only the object", got)
	}

	// Replace, with an unknown size.
	if err := l.Put(ctx, "t1/c1/m1/invoice.pdf", strings.NewReader("v2"), -1, ""); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, l, "t1/c1/m1/invoice.pdf"); string(got) != "v2" {
		t.Fatalf("Get after replace = %q", got)
	}
	// An empty object is an object.
	if err := l.Put(ctx, "t1/empty", strings.NewReader(""), 0, "text/plain"); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, l, "t1/empty"); len(got) != 0 {
		t.Fatalf("Get(empty) = %q", got)
	}

	if err := l.Delete(ctx, "t1/c1/m1/invoice.pdf"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Get(ctx, "t1/c1/m1/invoice.pdf"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: err = %v, want ErrNotFound", err)
	}
	if err := l.Delete(ctx, "t1/c1/m1/invoice.pdf"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
}

func TestLocalNotFound(t *testing.T) {
	ctx := context.Background()
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Put(ctx, "dir/file", strings.NewReader("x"), 1, ""); err != nil {
		t.Fatal(err)
	}
	// Missing, a directory (a prefix of other keys), and a path through a file.
	for _, key := range []string{"missing", "dir", "dir/file/below"} {
		if _, err := l.Get(ctx, key); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q): err = %v, want ErrNotFound", key, err)
		}
		if err := l.Delete(ctx, key); err != nil {
			t.Errorf("Delete(%q): %v", key, err)
		}
	}
	if got := readAll(t, l, "dir/file"); string(got) != "x" {
		t.Fatalf("Delete of the directory touched its file: %q", got)
	}
}

func TestLocalBadKeys(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	dir := filepath.Join(root, "store")
	l, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A file outside the store that "../" keys would reach.
	if err := os.WriteFile(filepath.Join(root, "escape"), []byte("outside"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, key := range badKeys {
		if err := l.Put(ctx, key, strings.NewReader("x"), 1, ""); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Put(%q): err = %v, want ErrInvalidKey", key, err)
		}
		if _, err := l.Get(ctx, key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Get(%q): err = %v, want ErrInvalidKey", key, err)
		}
		if err := l.Delete(ctx, key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Delete(%q): err = %v, want ErrInvalidKey", key, err)
		}
	}
	if got := files(t, dir); len(got) != 0 {
		t.Fatalf("bad keys left files: %v", got)
	}
	if b, err := os.ReadFile(filepath.Join(root, "escape")); err != nil || string(b) != "outside" {
		t.Fatalf("file outside the store changed: %q %v", b, err)
	}
}

// A Put that fails leaves nothing behind: no new object, no temporary file, and an object
// already under the key unchanged.
func TestLocalFailedPutLeavesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Put(ctx, "m/kept", strings.NewReader("original"), 8, ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range failingPuts {
		t.Run(tc.name, func(t *testing.T) {
			for _, key := range []string{"m/fresh", "m/kept"} {
				if err := l.Put(ctx, key, tc.reader(), tc.size, ""); !errors.Is(err, tc.want) {
					t.Fatalf("Put(%s): err = %v, want %v", key, err, tc.want)
				}
			}
			if got := files(t, dir); len(got) != 1 || got[0] != "m/kept" {
				t.Fatalf("files after failed Puts = %v, want only m/kept", got)
			}
			if got := readAll(t, l, "m/kept"); string(got) != "original" {
				t.Fatalf("m/kept = %q after a failed Put, want original", got)
			}
		})
	}

	t.Run("context cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := l.Put(cctx, "m/fresh", strings.NewReader("data"), 4, ""); !errors.Is(err, context.Canceled) {
			t.Fatalf("Put with a cancelled context: err = %v, want context.Canceled", err)
		}
		if got := files(t, dir); len(got) != 1 {
			t.Fatalf("files after cancelled Put = %v", got)
		}
	})
}

// Readers racing a writer that replaces an object see the old or the new content whole,
// never a mix or a truncated file.
func TestLocalReplaceIsAtomic(t *testing.T) {
	ctx := context.Background()
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := bytes.Repeat([]byte("a"), 64<<10)
	b := bytes.Repeat([]byte("b"), 64<<10)
	if err := l.Put(ctx, "hot", bytes.NewReader(a), int64(len(a)), ""); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		defer close(done)
		for i := range 50 {
			next := a
			if i%2 == 0 {
				next = b
			}
			if err := l.Put(ctx, "hot", bytes.NewReader(next), int64(len(next)), ""); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			rc, err := l.Get(ctx, "hot")
			if err != nil {
				t.Error(err)
				return
			}
			got, err := io.ReadAll(rc)
			_ = rc.Close()
			if err != nil {
				t.Error(err)
				return
			}
			if !bytes.Equal(got, a) && !bytes.Equal(got, b) {
				t.Errorf("read a mixed or partial object of %d bytes", len(got))
				return
			}
		}
	})
	wg.Wait()
}

func TestNewLocal(t *testing.T) {
	if _, err := NewLocal(""); err == nil {
		t.Fatal("NewLocal(\"\") succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewLocal(file); err == nil {
		t.Fatal("NewLocal on a regular file succeeded")
	}
}

// Readers that hand over data a byte at a time, or with io.EOF alongside the last bytes, are
// taken for exactly their length.
func TestLocalPutReaderShapes(t *testing.T) {
	ctx := context.Background()
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const body = "exactly these bytes"
	for name, r := range map[string]io.Reader{
		"one byte at a time": iotest.OneByteReader(strings.NewReader(body)),
		"EOF with the data":  iotest.DataErrReader(strings.NewReader(body)),
		"half reads":         iotest.HalfReader(strings.NewReader(body)),
	} {
		if err := l.Put(ctx, "k", r, int64(len(body)), ""); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := readAll(t, l, "k"); string(got) != body {
			t.Fatalf("%s: stored %q", name, got)
		}
	}
	if err := l.Put(ctx, "k", iotest.DataErrReader(strings.NewReader(body)), int64(len(body))-1, ""); !errors.Is(err, ErrSize) {
		t.Fatalf("one byte over, EOF with the data: %v", err)
	}
}
