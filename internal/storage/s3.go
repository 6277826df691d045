package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// S3Config names an S3-compatible bucket (AWS S3, MinIO, Aliyun OSS, Tencent COS, R2, ...).
type S3Config struct {
	// Endpoint is host[:port], without a scheme: "s3.eu-west-1.amazonaws.com", "minio:9000".
	Endpoint string
	// Region is the bucket's region; empty asks the server once, on first use.
	Region    string
	Bucket    string
	AccessKey string
	SecretKey string
	// UseSSL selects https.
	UseSSL bool
	// PathStyle forces host/bucket/key URLs (MinIO and most self-hosted servers need it).
	// Otherwise the bucket goes into the host name where the provider is known to support it
	// (AWS, Google, Aliyun OSS) and into the path elsewhere.
	PathStyle bool
}

// S3 keeps objects in one bucket, with their content type as the object's Content-Type.
type S3 struct {
	client *minio.Client
	cfg    S3Config
}

var _ Store = (*S3)(nil)

// partSize bounds the memory one upload of unknown size buffers (the library would otherwise
// size parts for a 5 TiB object); it is also the largest object sent as a single PUT.
const partSize = 16 << 20

// NewS3 checks the configuration and makes the client; it does not contact the server.
func NewS3(cfg S3Config) (*S3, error) { return newS3(cfg, nil) }

// newS3 takes the transport separately so tests can trust their TLS fake; nil is the default.
func newS3(cfg S3Config, transport http.RoundTripper) (*S3, error) {
	switch {
	case cfg.Endpoint == "":
		return nil, errors.New("storage: s3 endpoint is empty")
	case strings.Contains(cfg.Endpoint, "://") || strings.Contains(cfg.Endpoint, "/"):
		return nil, fmt.Errorf("storage: s3 endpoint %q must be host[:port], without scheme or path", cfg.Endpoint)
	case cfg.AccessKey == "" || cfg.SecretKey == "":
		return nil, errors.New("storage: s3 access key and secret key are required")
	}
	if err := s3utils.CheckValidBucketNameStrict(cfg.Bucket); err != nil {
		return nil, fmt.Errorf("storage: s3 bucket %q: %w", cfg.Bucket, err)
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       cfg.UseSSL,
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    transport,
	})
	if err != nil {
		return nil, fmt.Errorf("storage: s3 client: %w", err)
	}
	return &S3{client: client, cfg: cfg}, nil
}

// Put uploads the object. S3 makes an object visible only once its upload completes, and a
// reader that fails or breaks the declared size aborts the request, so nothing partial lands.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	_, err := s.client.PutObject(ctx, s.cfg.Bucket, key, exact(r, size), size, minio.PutObjectOptions{
		ContentType: contentType,
		PartSize:    partSize,
	})
	if err != nil {
		return fmt.Errorf("storage: put %s: %w", key, err)
	}
	return nil
}

// Get opens the object. It asks for the object's metadata first so a missing key is reported
// here as ErrNotFound rather than on the first Read.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ValidKey(key); err != nil {
		return nil, err
	}
	obj, err := s.client.GetObject(ctx, s.cfg.Bucket, key, minio.GetObjectOptions{})
	if err == nil {
		_, err = obj.Stat()
	}
	if err != nil {
		if obj != nil {
			_ = obj.Close()
		}
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
		}
		return nil, fmt.Errorf("storage: get %s: %w", key, err)
	}
	return obj, nil
}

// Delete removes the object; S3 itself answers success for a missing key.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	err := s.client.RemoveObject(ctx, s.cfg.Bucket, key, minio.RemoveObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		return fmt.Errorf("storage: delete %s: %w", key, err)
	}
	return nil
}
