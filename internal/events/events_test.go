package events

import (
	"context"
	"io"
	"log/slog"
	"testing"
)

func TestBusDeliversByKindAndSurvivesPanics(t *testing.T) {
	b := NewBus(slog.New(slog.NewTextHandler(io.Discard, nil)))
	var got []string
	b.Subscribe("message.created", func(_ context.Context, ev Event) { panic("boom") })
	b.Subscribe("message.created", func(_ context.Context, ev Event) { got = append(got, "m:"+ev.Kind) })
	b.Subscribe("*", func(_ context.Context, ev Event) { got = append(got, "all:"+ev.Kind) })
	b.Publish(context.Background(), Event{Kind: "message.created"})
	b.Publish(context.Background(), Event{Kind: "conversation.created"})
	want := []string{"m:message.created", "all:message.created", "all:conversation.created"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}
