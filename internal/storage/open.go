package storage

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// Open makes the Store a storage URL names (the SWITCHBOARD_STORAGE_URL setting):
//
//   - "" (the default): files under dataDir/attachments.
//   - "file:///srv/switchboard/attachments": files under that absolute directory (a volume
//     shared by several serve processes, say).
//   - "s3://ACCESS:SECRET@host[:port]/bucket[?region=R&ssl=false&path_style=true]": an
//     S3-compatible bucket. ACCESS and SECRET are percent-encoded (an AWS secret's "/" is
//     written %2F, "+" as %2B). region defaults to asking the server; ssl (https) defaults to
//     true; path_style defaults to false (see S3Config.PathStyle; MinIO wants true). Any other
//     parameter is an error, so a misspelt one is not silently ignored.
//
// Errors never repeat the URL, which carries the secret key.
func Open(rawURL, dataDir string) (Store, error) {
	if rawURL == "" {
		if dataDir == "" {
			return nil, errors.New("storage: no storage URL and no data directory for local attachments")
		}
		return NewLocal(filepath.Join(dataDir, "attachments"))
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse's error quotes the whole URL, secret included.
		return nil, errors.New("storage: storage URL is malformed")
	}
	switch u.Scheme {
	case "file":
		return openFile(u)
	case "s3":
		cfg, err := parseS3(u)
		if err != nil {
			return nil, err
		}
		return NewS3(cfg)
	case "":
		return nil, errors.New(`storage: storage URL has no scheme (want "s3://..." or "file:///...")`)
	default:
		return nil, fmt.Errorf(`storage: storage URL scheme %q is not supported (want "s3" or "file")`, u.Scheme)
	}
}

func openFile(u *url.URL) (Store, error) {
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("storage: file URL names host %q; want file:///absolute/path", u.Host)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("storage: file URL takes only a path")
	}
	if u.Path == "" || !strings.HasPrefix(u.Path, "/") {
		return nil, errors.New("storage: file URL needs an absolute path (file:///dir)")
	}
	return NewLocal(filepath.FromSlash(u.Path))
}

func parseS3(u *url.URL) (S3Config, error) {
	var cfg S3Config
	if u.Opaque != "" {
		return cfg, errors.New("storage: s3 URL must be s3://ACCESS:SECRET@host/bucket")
	}
	if u.User == nil {
		return cfg, errors.New("storage: s3 URL has no credentials (s3://ACCESS:SECRET@host/bucket)")
	}
	cfg.AccessKey = u.User.Username()
	cfg.SecretKey, _ = u.User.Password()
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return cfg, errors.New("storage: s3 URL needs both an access key and a secret key")
	}
	if u.Hostname() == "" {
		return cfg, errors.New("storage: s3 URL has no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return cfg, fmt.Errorf("storage: s3 URL port %q is not valid", p)
		}
	}
	cfg.Endpoint = u.Host
	bucket := strings.TrimPrefix(u.Path, "/")
	bucket = strings.TrimSuffix(bucket, "/")
	if bucket == "" {
		return cfg, errors.New("storage: s3 URL has no bucket (s3://ACCESS:SECRET@host/bucket)")
	}
	if strings.Contains(bucket, "/") {
		return cfg, fmt.Errorf("storage: s3 URL path %q must be just the bucket", u.Path)
	}
	cfg.Bucket = bucket
	if u.Fragment != "" {
		return cfg, errors.New("storage: s3 URL must not have a fragment")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return cfg, errors.New("storage: s3 URL query is malformed")
	}
	cfg.UseSSL = true
	for name, vals := range q {
		if len(vals) != 1 {
			return cfg, fmt.Errorf("storage: s3 URL parameter %q is given %d times", name, len(vals))
		}
		v := vals[0]
		switch name {
		case "region":
			cfg.Region = v
		case "ssl":
			if cfg.UseSSL, err = strconv.ParseBool(v); err != nil {
				return cfg, fmt.Errorf("storage: s3 URL ssl=%q is not true or false", v)
			}
		case "path_style":
			if cfg.PathStyle, err = strconv.ParseBool(v); err != nil {
				return cfg, fmt.Errorf("storage: s3 URL path_style=%q is not true or false", v)
			}
		default:
			return cfg, fmt.Errorf("storage: s3 URL parameter %q is not known (region, ssl, path_style)", name)
		}
	}
	return cfg, nil
}
