package tenant_test

import (
	"context"
	"errors"
	"testing"
)

// pgError is an error as pgx reports a PostgreSQL one: what tenant.Retryable reads.
type pgError string

func (e pgError) Error() string    { return "ERROR: SQLSTATE " + string(e) }
func (e pgError) SQLState() string { return string(e) }

// TestTxRetrying: a transaction PostgreSQL picked as a deadlock's or serialization failure's
// victim is run again, up to three runs in all; any other error is returned at once; inside a
// caller's transaction it runs once and the caller gets the error.
func TestTxRetrying(t *testing.T) {
	other := errors.New("not a conflict")
	eachDialect(t, func(t *testing.T, w *world) {
		for _, tc := range []struct {
			name    string
			fails   []error // what each run returns, in turn; nil after them
			inTx    bool
			runs    int
			wantErr error
		}{
			{"deadlock victim once", []error{pgError("40P01")}, false, 2, nil},
			{"serialization failure twice", []error{pgError("40001"), pgError("40001")}, false, 3, nil},
			{"victim every time", []error{pgError("40P01"), pgError("40P01"), pgError("40P01"), pgError("40P01")}, false, 3, pgError("40P01")},
			{"another error", []error{other}, false, 1, other},
			{"inside a caller's transaction", []error{pgError("40P01")}, true, 1, pgError("40P01")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				runs := 0
				fn := func(context.Context) error {
					runs++
					if runs <= len(tc.fails) {
						return tc.fails[runs-1]
					}
					return nil
				}
				var err error
				if tc.inTx {
					_ = w.db.Tx(w.acme, func(ctx context.Context) error {
						err = w.db.TxRetrying(ctx, fn)
						return err
					})
				} else {
					err = w.db.TxRetrying(w.acme, fn)
				}
				if runs != tc.runs {
					t.Errorf("%d runs, want %d", runs, tc.runs)
				}
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("error %v, want %v", err, tc.wantErr)
				}
			})
		}
	})
}
