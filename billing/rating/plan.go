package rating

import "fmt"

// Well-known meters. Seats are ordinary meters with their own prices so that a plan decides
// whether it bills seat-days, peak seats, or both.
const (
	MeterSeatDaysOwn     = "seat_days_own"     // seat-days of the tenant's own agents
	MeterSeatDaysManaged = "seat_days_managed" // seat-days of agents a vendor manages for it
	MeterPeakSeats       = "peak_seats"        // highest concurrent seats in the segment
	MeterInteractions    = "interactions"
)

// Plan is one version of a plan. TrialDays is informational here: the caller decides whether a
// period falls inside the trial and says so with Input.Trial.
type Plan struct {
	Code      string
	Version   int
	Currency  string
	BaseFee   int64
	Prices    []Price
	TrialDays int
}

// AddOn is an optional extra: a recurring fee, prorated like the base fee, and its own meters.
type AddOn struct {
	Code   string
	Fee    int64
	Prices []Price
}

// Validate reports whether the plan is internally consistent.
func (p Plan) Validate() error {
	if err := p.validate(); err != nil {
		return fmt.Errorf("rating: %w", err)
	}
	return nil
}

func (p Plan) validate() error {
	if p.Code == "" {
		return fmt.Errorf("plan has no code: %w", ErrInvalidPlan)
	}
	if p.Version < 1 {
		return fmt.Errorf("plan %s: version %d is not positive: %w", p.Code, p.Version, ErrInvalidPlan)
	}
	if !validCurrency(p.Currency) {
		return fmt.Errorf("plan %s: currency %q is not three upper-case letters: %w", p.ref(), p.Currency, ErrInvalidPlan)
	}
	if p.BaseFee < 0 || p.TrialDays < 0 {
		return fmt.Errorf("plan %s: negative base fee or trial days: %w", p.ref(), ErrInvalidPlan)
	}
	if err := validPrices(p.Prices, map[string]bool{}); err != nil {
		return fmt.Errorf("plan %s: %w", p.ref(), err)
	}
	return nil
}

func (p Plan) ref() string { return fmt.Sprintf("%s v%d", p.Code, p.Version) }

// Validate reports whether the add-on is internally consistent.
func (a AddOn) Validate() error {
	if err := a.validate(map[string]bool{}); err != nil {
		return fmt.Errorf("rating: %w", err)
	}
	return nil
}

// validate takes the meters already priced by the plan, since usage is keyed by meter alone
// and a meter priced twice would be billed twice.
func (a AddOn) validate(seen map[string]bool) error {
	if a.Code == "" {
		return fmt.Errorf("add-on has no code: %w", ErrInvalidPlan)
	}
	if a.Fee < 0 {
		return fmt.Errorf("add-on %s: negative fee %d: %w", a.Code, a.Fee, ErrInvalidPlan)
	}
	if err := validPrices(a.Prices, seen); err != nil {
		return fmt.Errorf("add-on %s: %w", a.Code, err)
	}
	return nil
}

func validPrices(prices []Price, seen map[string]bool) error {
	for _, pr := range prices {
		if err := pr.validate(); err != nil {
			return err
		}
		if seen[pr.Meter] {
			return fmt.Errorf("meter %q priced twice: %w", pr.Meter, ErrInvalidPlan)
		}
		seen[pr.Meter] = true
	}
	return nil
}

func validCurrency(code string) bool {
	if len(code) != 3 {
		return false
	}
	for i := range len(code) {
		if code[i] < 'A' || code[i] > 'Z' {
			return false
		}
	}
	return true
}
