package rating

import "fmt"

// Pricing models of a Price.
const (
	ModelPerUnit   = "per_unit"
	ModelGraduated = "graduated"
	ModelVolume    = "volume"
)

// Tier is one step of a graduated or volume price. UpTo is inclusive; 0 means unbounded and is
// allowed on the last tier only.
type Tier struct {
	UpTo       int64
	UnitAmount int64
	FlatAmount int64
}

// Price prices one meter. Included units are free; tiers apply to the units after them (see
// the package documentation). A per_unit price uses UnitAmount; tiered prices use Tiers only.
type Price struct {
	Meter      string
	Model      string // ModelPerUnit, ModelGraduated or ModelVolume
	UnitAmount int64
	Tiers      []Tier
	Included   int64
}

// Validate reports whether the price can rate any quantity without ambiguity.
func (p Price) Validate() error {
	if err := p.validate(); err != nil {
		return fmt.Errorf("rating: %w", err)
	}
	return nil
}

func (p Price) validate() error {
	if p.Meter == "" {
		return fmt.Errorf("price has no meter: %w", ErrInvalidPrice)
	}
	if p.Included < 0 {
		return fmt.Errorf("price %q: negative included %d: %w", p.Meter, p.Included, ErrInvalidPrice)
	}
	switch p.Model {
	case ModelPerUnit:
		if len(p.Tiers) != 0 {
			return fmt.Errorf("price %q: per_unit price has tiers: %w", p.Meter, ErrInvalidPrice)
		}
		if p.UnitAmount < 0 {
			return fmt.Errorf("price %q: negative unit amount %d: %w", p.Meter, p.UnitAmount, ErrInvalidPrice)
		}
		return nil
	case ModelGraduated, ModelVolume:
	default:
		return fmt.Errorf("price %q: unknown model %q: %w", p.Meter, p.Model, ErrInvalidPrice)
	}
	if len(p.Tiers) == 0 {
		return fmt.Errorf("price %q: %s price has no tiers: %w", p.Meter, p.Model, ErrInvalidPrice)
	}
	// A unit amount beside tiers would leave readers guessing which one applies.
	if p.UnitAmount != 0 {
		return fmt.Errorf("price %q: %s price sets a unit amount outside its tiers: %w", p.Meter, p.Model, ErrInvalidPrice)
	}
	var prev int64
	for i, t := range p.Tiers {
		if t.UnitAmount < 0 || t.FlatAmount < 0 {
			return fmt.Errorf("price %q: tier %d has a negative amount: %w", p.Meter, i, ErrInvalidPrice)
		}
		if t.UpTo == 0 {
			if i != len(p.Tiers)-1 {
				return fmt.Errorf("price %q: tier %d is unbounded but not last: %w", p.Meter, i, ErrInvalidPrice)
			}
			continue
		}
		if t.UpTo <= prev {
			return fmt.Errorf("price %q: tier %d up to %d does not ascend from %d: %w", p.Meter, i, t.UpTo, prev, ErrInvalidPrice)
		}
		prev = t.UpTo
	}
	return nil
}

// charge prices quantity units with included of them free. unit is the per-unit amount that
// applied, or 0 for a graduated price whose units fall in different tiers.
func (p Price) charge(quantity, included int64) (billable, unit, amount int64, err error) {
	if quantity < 0 {
		return 0, 0, 0, fmt.Errorf("meter %q: negative quantity %d: %w", p.Meter, quantity, ErrInvalidInput)
	}
	billable = max(quantity-max(included, 0), 0)
	switch p.Model {
	case ModelPerUnit:
		amount, err = mul(billable, p.UnitAmount)
		return billable, p.UnitAmount, amount, err
	case ModelGraduated:
		amount, err = p.graduated(billable)
		if len(p.Tiers) == 1 {
			unit = p.Tiers[0].UnitAmount
		}
		return billable, unit, amount, err
	case ModelVolume:
		unit, amount, err = p.volume(billable)
		return billable, unit, amount, err
	}
	return 0, 0, 0, fmt.Errorf("price %q: unknown model %q: %w", p.Meter, p.Model, ErrInvalidPrice)
}

func (p Price) graduated(billable int64) (int64, error) {
	var total, lower int64 // lower: units already priced by earlier tiers
	for _, t := range p.Tiers {
		if lower >= billable {
			break
		}
		n := billable - lower
		if t.UpTo != 0 {
			n = min(n, t.UpTo-lower)
		}
		c, err := p.tierCost(t, n)
		if err == nil {
			total, err = add(total, c)
		}
		if err != nil {
			return 0, err
		}
		lower += n
	}
	if lower < billable {
		return 0, p.beyondTiers(billable)
	}
	return total, nil
}

func (p Price) volume(billable int64) (unit, amount int64, err error) {
	if billable == 0 {
		return 0, 0, nil
	}
	for _, t := range p.Tiers {
		if t.UpTo == 0 || billable <= t.UpTo {
			amount, err = p.tierCost(t, billable)
			return t.UnitAmount, amount, err
		}
	}
	return 0, 0, p.beyondTiers(billable)
}

func (p Price) tierCost(t Tier, n int64) (int64, error) {
	c, err := mul(n, t.UnitAmount)
	if err == nil {
		c, err = add(c, t.FlatAmount)
	}
	if err != nil {
		return 0, fmt.Errorf("meter %q: %w", p.Meter, err)
	}
	return c, nil
}

func (p Price) beyondTiers(billable int64) error {
	last := p.Tiers[len(p.Tiers)-1].UpTo
	return fmt.Errorf("meter %q: %d billable units exceed the last tier (up to %d): %w", p.Meter, billable, last, ErrInvalidPrice)
}
