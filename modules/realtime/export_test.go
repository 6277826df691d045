package realtime

import "time"

// SetClock replaces the hub's clock (event times, prune cutoff, since expiry).
func SetClock(h *Hub, now func() time.Time) { h.now = now }

// SetBuffer sizes a subscription's channel and its catch-up hold.
func SetBuffer(h *Hub, size, pending int) { h.bufSize, h.maxPending = size, pending }

// SetPageSize sets the journal rows read per catch-up query.
func SetPageSize(h *Hub, n int) { h.pageSize = n }
