package rating

import (
	"fmt"
	"math/bits"
)

// Error is a constant error kind; a const type keeps the sentinels immutable.
type Error string

func (e Error) Error() string { return string(e) }

// Error kinds, to match with errors.Is; messages carry the details.
const (
	ErrInvalidPrice     Error = "invalid price"
	ErrInvalidPlan      Error = "invalid plan"
	ErrInvalidInput     Error = "invalid input"
	ErrCurrencyMismatch Error = "currency mismatch"
	ErrSegments         Error = "segments do not tile the period"
	ErrOverflow         Error = "amount overflows int64"
)

const maxInt64 = 1<<63 - 1

// add is signed because adjustment lines may be negative.
func add(a, b int64) (int64, error) {
	s := a + b
	if (a > 0 && b > 0 && s < 0) || (a < 0 && b < 0 && s >= 0) {
		return 0, fmt.Errorf("%d + %d: %w", a, b, ErrOverflow)
	}
	return s, nil
}

// mulDiv returns a × b / c for a, b ≥ 0 and c > 0. The product is kept in 128 bits because
// fee × seconds overflows int64 for fees above roughly 3.5 × 10¹² minor units.
func mulDiv(a, b, c int64, halfUp bool) (int64, error) {
	if a < 0 || b < 0 || c <= 0 {
		return 0, fmt.Errorf("%d × %d / %d: %w", a, b, c, ErrInvalidInput)
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi >= uint64(c) { // bits.Div64 panics when the quotient needs more than 64 bits
		return 0, fmt.Errorf("%d × %d / %d: %w", a, b, c, ErrOverflow)
	}
	q, r := bits.Div64(hi, lo, uint64(c))
	// r ≥ c − r is 2r ≥ c without the doubling overflowing; the bound on q keeps q++ from
	// wrapping to zero and slipping past the overflow check.
	if halfUp && r >= uint64(c)-r && q <= maxInt64 {
		q++
	}
	if q > maxInt64 {
		return 0, fmt.Errorf("%d × %d / %d: %w", a, b, c, ErrOverflow)
	}
	return int64(q), nil
}

// mul multiplies non-negative operands, reporting overflow instead of wrapping.
func mul(a, b int64) (int64, error) { return mulDiv(a, b, 1, false) }
