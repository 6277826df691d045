package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Local keeps objects as files under one directory, a key's slashes becoming subdirectories.
// The content type is not stored: callers keep it with the key.
type Local struct {
	dir string
}

var _ Store = (*Local)(nil)

// NewLocal uses dir (created if missing, 0o700) as the root of the store.
func NewLocal(dir string) (*Local, error) {
	if dir == "" {
		return nil, errors.New("storage: local directory is empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: local directory %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("storage: create %s: %w", abs, err)
	}
	return &Local{dir: abs}, nil
}

// Dir is the root directory.
func (l *Local) Dir() string { return l.dir }

func (l *Local) path(key string) (string, error) {
	if err := ValidKey(key); err != nil {
		return "", err
	}
	return filepath.Join(l.dir, filepath.FromSlash(key)), nil
}

// Put writes to a temporary file beside the target, syncs it and renames it into place, so a
// reader (or a crash) never sees a half-written attachment.
func (l *Local) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (err error) {
	dst, err := l.path(key)
	if err != nil {
		return err
	}
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("storage: put %s: %w", key, err)
	}
	// CreateTemp makes the file 0o600; the leading dot keeps it out of the key space.
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("storage: put %s: %w", key, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err = io.Copy(f, ctxReader{ctx, exact(r, size)}); err != nil {
		return fmt.Errorf("storage: put %s: %w", key, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("storage: put %s: %w", key, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("storage: put %s: %w", key, err)
	}
	if err = ctx.Err(); err != nil {
		return fmt.Errorf("storage: put %s: %w", key, err)
	}
	if err = os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("storage: put %s: %w", key, err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes the rename durable. Failure only weakens durability after a power loss, and
// some filesystems refuse to sync directories, so it is not an error.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

// Get opens the file under key.
func (l *Local) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := l.path(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
		}
		return nil, fmt.Errorf("storage: get %s: %w", key, err)
	}
	// A directory is a prefix of other keys, not an object.
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("storage: get %s: %w", key, err)
		}
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	return f, nil
}

// Delete removes the file under key; a missing file is not an error. Emptied directories are
// left in place: removing them would race with a concurrent Put into the same directory.
func (l *Local) Delete(ctx context.Context, key string) error {
	p, err := l.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	st, err := os.Lstat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
		return fmt.Errorf("storage: delete %s: %w", key, err)
	}
	if st.IsDir() {
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("storage: delete %s: %w", key, err)
	}
	return nil
}
