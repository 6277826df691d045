package tenant_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/modules/identity"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// TestBeforeCommit: BeforeCommit functions run after the body, inside its transaction and before
// it commits (also those registered by a BeforeCommit function); an error from any of them rolls
// back everything; a failed body runs none of them.
func TestBeforeCommit(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		name                         string
		bodyErr, beforeErr, innerErr error
		inner                        bool // the BeforeCommit function registers another
		wantErr                      error
		wantRun                      []string
	}{
		{name: "commits with the body", wantRun: []string{"body", "before", "after"}},
		{name: "registered while running runs too", inner: true, wantRun: []string{"body", "before", "inner", "after"}},
		{name: "its error rolls back", beforeErr: boom, wantErr: boom, wantRun: []string{"body", "before"}},
		{name: "inner error rolls back", inner: true, innerErr: boom, wantErr: boom, wantRun: []string{"body", "before", "inner"}},
		{name: "failed body runs none", inner: true, bodyErr: boom, wantErr: boom, wantRun: []string{"body"}},
	}
	eachDialect(t, func(t *testing.T, w *world) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				body, before, inner := newKey("body"), newKey("before"), newKey("inner")
				var run []string
				create := func(ctx context.Context, k *identity.APIKey) error {
					return w.db.Run(ctx, func(tx *gorm.DB) error { return tx.Create(k).Error })
				}
				err := w.db.Tx(w.acme, func(ctx context.Context) error {
					if !tenant.InTx(ctx) {
						t.Error("InTx is false inside Tx")
					}
					// Registered first: it must still run after the rest of the body.
					must(t, tenant.BeforeCommit(ctx, func(ctx context.Context) error {
						run = append(run, "before")
						if !tenant.InTx(ctx) {
							t.Error("BeforeCommit's context carries no transaction")
						}
						// The body's row is there in the transaction, and not yet committed.
						var n int64
						must(t, w.db.Run(ctx, func(tx *gorm.DB) error {
							return tx.Model(&identity.APIKey{}).Where("id = ?", body.ID).Count(&n).Error
						}))
						if n != 1 {
							t.Errorf("BeforeCommit sees %d body rows in its transaction, want 1", n)
						}
						if _, ok := w.key(t, body.ID); ok {
							t.Error("the body's row is visible to another connection while BeforeCommit runs: already committed")
						}
						if err := create(ctx, &before); err != nil {
							return err
						}
						tenant.AfterCommit(ctx, func(context.Context) { run = append(run, "after") })
						if c.inner {
							must(t, tenant.BeforeCommit(ctx, func(ctx context.Context) error {
								run = append(run, "inner")
								if err := create(ctx, &inner); err != nil {
									return err
								}
								return c.innerErr
							}))
						}
						return c.beforeErr
					}))
					if err := create(ctx, &body); err != nil {
						return err
					}
					run = append(run, "body")
					return c.bodyErr
				})
				if !errors.Is(err, c.wantErr) || (c.wantErr == nil && err != nil) {
					t.Fatalf("Tx returned %v, want %v", err, c.wantErr)
				}
				if !slices.Equal(run, c.wantRun) {
					t.Errorf("ran %v, want %v", run, c.wantRun)
				}
				committed := c.wantErr == nil
				keys := []identity.APIKey{body, before}
				if c.inner {
					keys = append(keys, inner)
				}
				for _, k := range keys {
					if _, ok := w.key(t, k.ID); ok != committed {
						t.Errorf("row %q committed: %v, want %v", k.Name, ok, committed)
					}
				}
			})
		}
	})
}

// TestBeforeCommitWithoutTx: without a transaction the function runs at once and its error is
// the caller's.
func TestBeforeCommitWithoutTx(t *testing.T) {
	eachDialect(t, func(t *testing.T, w *world) {
		if tenant.InTx(w.acme) {
			t.Fatal("InTx is true without a transaction")
		}
		k := newKey("no tx")
		ran := 0
		err := tenant.BeforeCommit(w.acme, func(ctx context.Context) error {
			ran++
			return w.db.Run(ctx, func(tx *gorm.DB) error { return tx.Create(&k).Error })
		})
		must(t, err)
		if _, ok := w.key(t, k.ID); ran != 1 || !ok {
			t.Fatalf("ran %d times (want 1 at once), row written: %v", ran, ok)
		}
		boom := errors.New("boom")
		if err := tenant.BeforeCommit(w.acme, func(context.Context) error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("BeforeCommit without a tx returned %v, want the function's error", err)
		}
	})
}

type localKey struct{}

type otherLocalKey struct{}

type bag struct{ n int }

// TestTxLocal: one value per transaction, shared by nested Tx and BeforeCommit functions, made
// fresh in the next transaction and after a rollback; a fresh value on every call without a tx.
func TestTxLocal(t *testing.T) {
	eachDialect(t, func(t *testing.T, w *world) {
		made := 0
		mk := func() *bag { made++; return &bag{} }
		var first *bag
		seenBeforeCommit := 0
		must(t, w.db.Tx(w.acme, func(ctx context.Context) error {
			v, fresh := tenant.TxLocal(ctx, localKey{}, mk)
			if !fresh || v == nil {
				t.Fatalf("first TxLocal: fresh %v, value %v", fresh, v)
			}
			first = v
			v.n++
			again, fresh := tenant.TxLocal(ctx, localKey{}, mk)
			if fresh || again != v {
				t.Errorf("second TxLocal in the same Tx: fresh %v, same value %v", fresh, again == v)
			}
			must(t, w.db.Tx(ctx, func(ctx context.Context) error {
				nested, fresh := tenant.TxLocal(ctx, localKey{}, mk)
				if fresh || nested != v {
					t.Errorf("TxLocal in a nested Tx: fresh %v, same value %v", fresh, nested == v)
				}
				nested.n++
				return nil
			}))
			if other, fresh := tenant.TxLocal(ctx, otherLocalKey{}, mk); !fresh || other == v {
				t.Errorf("another key: fresh %v, same value %v", fresh, other == v)
			}
			return tenant.BeforeCommit(ctx, func(ctx context.Context) error {
				got, fresh := tenant.TxLocal(ctx, localKey{}, mk)
				if fresh || got != v {
					t.Errorf("TxLocal in BeforeCommit: fresh %v, same value %v", fresh, got == v)
				}
				seenBeforeCommit = got.n
				return nil
			})
		}))
		if made != 2 || seenBeforeCommit != 2 {
			t.Errorf("made %d values (want 2: one a key), BeforeCommit saw n=%d (want 2)", made, seenBeforeCommit)
		}

		// The next transaction starts with a new value.
		must(t, w.db.Tx(w.acme, func(ctx context.Context) error {
			v, fresh := tenant.TxLocal(ctx, localKey{}, mk)
			if !fresh || v == first || v.n != 0 {
				t.Errorf("TxLocal in the next Tx: fresh %v, same value as before %v, n=%d", fresh, v == first, v.n)
			}
			return nil
		}))

		// A failed body: its BeforeCommit functions never run and its value is gone.
		boom := errors.New("boom")
		var failed *bag
		ran := 0
		err := w.db.Tx(w.acme, func(ctx context.Context) error {
			failed, _ = tenant.TxLocal(ctx, localKey{}, mk)
			failed.n = 42
			must(t, tenant.BeforeCommit(ctx, func(context.Context) error { ran++; return nil }))
			return boom
		})
		if !errors.Is(err, boom) || ran != 0 {
			t.Fatalf("failed body: Tx returned %v, BeforeCommit ran %d times (want 0)", err, ran)
		}
		must(t, w.db.Tx(w.acme, func(ctx context.Context) error {
			v, fresh := tenant.TxLocal(ctx, localKey{}, mk)
			if !fresh || v == failed || v.n != 0 {
				t.Errorf("TxLocal after a rollback: fresh %v, the rolled-back value %v, n=%d", fresh, v == failed, v.n)
			}
			return nil
		}))

		// Without a transaction every call makes a value.
		a, freshA := tenant.TxLocal(w.acme, localKey{}, mk)
		b, freshB := tenant.TxLocal(w.acme, localKey{}, mk)
		if !freshA || !freshB || a == b {
			t.Errorf("without a tx: fresh %v/%v, same value %v", freshA, freshB, a == b)
		}
	})
}
