// Package billing meters what tenants use and bills them for it. This file and ledger.go are
// the usage ledger: a registry of meters and an append-only, idempotent record of usage events
// that other modules write in their own transactions (DESIGN rule 4). rollup.go keeps hourly and
// daily totals recomputed from the ledger.
//
// Quantities are integers in each meter's unit; money never appears here.
package billing

import (
	"fmt"
	"sort"
)

// Aggregation says how a meter's events become one number for a period.
type Aggregation string

const (
	Sum      Aggregation = "sum"      // add the quantities (interactions, minutes, seat-days)
	Max      Aggregation = "max"      // the largest sample (peak concurrent seats)
	Distinct Aggregation = "distinct" // how many different subjects (conversations)
)

// Meter is one thing Switchboard charges for.
type Meter struct {
	Name        string      `json:"name"`
	Unit        string      `json:"unit"`
	Aggregation Aggregation `json:"aggregation"`
	// DistinctBy is the dimension whose different values a Distinct meter counts; an event of
	// such a meter must carry it.
	DistinctBy  string `json:"distinct_by,omitempty"`
	Description string `json:"description"`
}

// The built-in meters.
var (
	Interactions     = Meter{Name: "interactions", Unit: "interaction", Aggregation: Sum, Description: "Messages and calls handled (inbound and outbound)"}
	Conversations    = Meter{Name: "conversations", Unit: "conversation", Aggregation: Distinct, DistinctBy: "conversation_id", Description: "Conversations with activity in the period"}
	VoiceMinutes     = Meter{Name: "voice_minutes", Unit: "minute", Aggregation: Sum, Description: "Call minutes, each call rounded up to the minute"}
	SeatDaysOwn      = Meter{Name: "seat_days_own", Unit: "seat-day", Aggregation: Sum, Description: "Days an own (tenant staff) seat was assigned"}
	SeatDaysManaged  = Meter{Name: "seat_days_managed", Unit: "seat-day", Aggregation: Sum, Description: "Days a managed (outsourced) seat was allocated"}
	PeakSeats        = Meter{Name: "peak_seats", Unit: "seat", Aggregation: Max, Description: "Most seats in use at once"}
	BotResolutions   = Meter{Name: "bot_resolutions", Unit: "resolution", Aggregation: Sum, Description: "Conversations the bot resolved without an agent"}
	builtinMeterList = []Meter{Interactions, Conversations, VoiceMinutes, SeatDaysOwn, SeatDaysManaged, PeakSeats, BotResolutions}
)

// Meters is the registry: the built-in meters plus any a deployment adds.
type Meters struct {
	byName map[string]Meter
}

// NewMeters returns the built-in meters and extra, refusing a name twice or a bad definition.
func NewMeters(extra ...Meter) (*Meters, error) {
	m := &Meters{byName: map[string]Meter{}}
	for _, mt := range append(append([]Meter{}, builtinMeterList...), extra...) {
		if mt.Name == "" || mt.Unit == "" {
			return nil, fmt.Errorf("billing: meter %q needs a name and a unit", mt.Name)
		}
		switch mt.Aggregation {
		case Sum, Max:
			if mt.DistinctBy != "" {
				return nil, fmt.Errorf("billing: meter %s: distinct_by only goes with distinct", mt.Name)
			}
		case Distinct:
			if mt.DistinctBy == "" {
				return nil, fmt.Errorf("billing: meter %s: distinct needs distinct_by", mt.Name)
			}
		default:
			return nil, fmt.Errorf("billing: meter %s: unknown aggregation %q", mt.Name, mt.Aggregation)
		}
		if _, dup := m.byName[mt.Name]; dup {
			return nil, fmt.Errorf("billing: meter %s declared twice", mt.Name)
		}
		m.byName[mt.Name] = mt
	}
	return m, nil
}

// Get returns the named meter.
func (m *Meters) Get(name string) (Meter, bool) {
	mt, ok := m.byName[name]
	return mt, ok
}

// All returns the meters by name.
func (m *Meters) All() []Meter {
	out := make([]Meter, 0, len(m.byName))
	for _, mt := range m.byName {
		out = append(out, mt)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
