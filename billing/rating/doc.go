// Package rating turns one monthly billing period of a tenant — its plan (or plans, after a
// mid-period change), add-ons, metered usage, coupons, prepaid credit, tax rate and late usage
// from already-closed periods — into an invoice. It is pure: no database, no clock, no I/O, so
// the same input always rates to the same invoice and can be re-rated to audit an old one.
//
// # Money
//
// Every amount is an int64 count of minor units (fen for CNY, cents for USD) in the invoice's
// ISO-4217 currency. There are no floating-point values anywhere in the package: binary
// fractions cannot represent 0.1 of a currency unit, and a rounding drift of one minor unit is
// a billing dispute. Products that could exceed int64 are computed in 128 bits (math/bits) and
// a result that does not fit is ErrOverflow rather than a silently wrapped number.
//
// # Allowances and tiers
//
// Price.Included units are free and consumed first; billing starts after them. For graduated
// and volume prices the tiers apply to the billable quantity (usage − included), not to raw
// usage: with 1,000 included and a first tier "up to 500", usage 1,200 bills 200 units in the
// first tier. This keeps the allowance and the tier table independent levers — raising an
// allowance never reshapes the tiers. Tier.UpTo is inclusive, so tier i covers units
// (UpTo[i-1], UpTo[i]]. A graduated price charges each unit at the tier it falls in plus the
// flat amount of every tier reached by at least one unit; a volume price charges all units at
// the tier the total falls in plus that tier's flat amount. Zero billable units cost nothing
// under every model, flat amounts included.
//
// # Proration and rounding
//
// A period is split into segments when the plan or add-ons change. Lengths are whole seconds.
//
//   - Base and add-on fees of a segment: fee × segment seconds / period seconds, rounded half-up.
//   - Allowances of a segment: included × segment seconds / period seconds, rounded down, so
//     splitting a period never grants more free units than the whole period would.
//   - Percent coupons: each is subtotal × basis points / 10,000, rounded half-up, all computed
//     on the same subtotal (not compounded); amount coupons follow. The discount never exceeds
//     the subtotal.
//   - Tax: (subtotal − discount) × basis points / 10,000, rounded half-up.
//   - Prepaid credit is applied after tax and never makes the total negative.
//
// All amounts being rounded are non-negative, so half-up and half-away-from-zero agree.
//
// # Late usage
//
// An Adjustment bills usage that arrived after its period was invoiced as the difference
// price(already billed + late) − price(already billed) under that period's plan with its full
// (unprorated) allowance, so late units fall into the tier and allowance they would have had.
// Under a volume price the difference can be negative; the line then reduces the subtotal.
package rating
