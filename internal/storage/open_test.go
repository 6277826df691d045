package storage

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenLocal(t *testing.T) {
	data := t.TempDir()
	st, err := Open("", data)
	if err != nil {
		t.Fatal(err)
	}
	l, ok := st.(*Local)
	if !ok {
		t.Fatalf("Open(\"\") = %T, want *Local", st)
	}
	if want := filepath.Join(data, "attachments"); l.Dir() != want {
		t.Fatalf("Dir = %s, want %s", l.Dir(), want)
	}
	if fi, err := os.Stat(l.Dir()); err != nil || !fi.IsDir() {
		t.Fatalf("attachments directory not created: %v", err)
	}

	dir := filepath.Join(t.TempDir(), "shared")
	st, err = Open("file://"+filepath.ToSlash(dir), "")
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := st.(*Local); !ok || l.Dir() != dir {
		t.Fatalf("Open(file://%s) = %#v", dir, st)
	}
}

func TestOpenS3(t *testing.T) {
	cases := []struct {
		url  string
		want S3Config
	}{
		{
			"s3://AKIAEXAMPLE:wJalr%2FK7MDENG%2BbPxRfi@s3.eu-west-1.amazonaws.com/acme-attachments?region=eu-west-1",
			S3Config{Endpoint: "s3.eu-west-1.amazonaws.com", Region: "eu-west-1", Bucket: "acme-attachments",
				AccessKey: "AKIAEXAMPLE", SecretKey: "wJalr/K7MDENG+bPxRfi", UseSSL: true},
		},
		{
			"s3://minio:minio-secret@minio:9000/attachments/?ssl=false&path_style=true",
			S3Config{Endpoint: "minio:9000", Bucket: "attachments", AccessKey: "minio", SecretKey: "minio-secret",
				PathStyle: true},
		},
		{
			"s3://k:s@[::1]:9000/bucket.with.dots?ssl=1&path_style=0&region=us-east-1",
			S3Config{Endpoint: "[::1]:9000", Region: "us-east-1", Bucket: "bucket.with.dots", AccessKey: "k",
				SecretKey: "s", UseSSL: true},
		},
	}
	for _, tc := range cases {
		st, err := Open(tc.url, t.TempDir())
		if err != nil {
			t.Errorf("Open(%s): %v", tc.url, err)
			continue
		}
		s, ok := st.(*S3)
		if !ok {
			t.Errorf("Open(%s) = %T, want *S3", tc.url, st)
			continue
		}
		if s.cfg != tc.want {
			t.Errorf("Open(%s) config\n got %+v\nwant %+v", tc.url, s.cfg, tc.want)
		}
	}
}

// The URL form works end to end against the fake, over plain http with path-style URLs.
func TestOpenS3RoundTrip(t *testing.T) {
	endpoint, _ := fakeS3(t, false)
	st, err := Open("s3://AKIDTEST:s3cr%2Ft@"+endpoint+"/"+testBucket+"?region=us-east-1&ssl=false&path_style=true", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.Put(ctx, "a/b.txt", strings.NewReader("hello"), 5, "text/plain"); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, st, "a/b.txt"); string(got) != "hello" {
		t.Fatalf("Get = %q", got)
	}
}

func TestOpenBad(t *testing.T) {
	const secret = "TOPSECRET"
	for _, raw := range []string{
		"s3://minio:9000/attachments",                            // no credentials
		"s3://AK@minio:9000/attachments",                         // no secret
		"s3://:" + secret + "@minio:9000/attachments",            // no access key
		"s3://AK:" + secret + "@/attachments",                    // no host
		"s3://AK:" + secret + "@minio:9000",                      // no bucket
		"s3://AK:" + secret + "@minio:9000/",                     // no bucket
		"s3://AK:" + secret + "@minio:9000/attachments/prefix",   // more than a bucket
		"s3://AK:" + secret + "@minio:9000/Bad_Bucket",           // invalid bucket name
		"s3://AK:" + secret + "@minio:notaport/attachments",      // url.Parse fails, quoting the URL
		"s3://AK:" + secret + "@minio:99999/attachments",         // port out of range
		"s3://AK:" + secret + "@minio:9000/attachments?ssl=mayb", // not a bool
		"s3://AK:" + secret + "@minio:9000/attachments?path_style=yes",
		"s3://AK:" + secret + "@minio:9000/attachments?regoin=eu", // misspelt parameter
		"s3://AK:" + secret + "@minio:9000/attachments?ssl=true&ssl=false",
		"s3://AK:" + secret + "@minio:9000/attachments#frag",
		"s3:AK:" + secret + "@minio/attachments", // opaque
		"S3://AK:" + secret + "@minio:9000/attachments/x",
		"https://AK:" + secret + "@minio:9000/attachments",
		"minio:9000/attachments",
		"/var/lib/attachments",
		"file://host/var/lib/attachments",
		"file:relative/dir",
		"file:///var/lib/x?mode=1",
		"%zz",
	} {
		st, err := Open(raw, t.TempDir())
		if err == nil {
			t.Errorf("Open(%q) = %T, want an error", raw, st)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("Open(%q) error repeats the secret: %v", raw, err)
		}
	}
	if _, err := Open("", ""); err == nil {
		t.Error("Open with neither URL nor data directory succeeded")
	}
}
