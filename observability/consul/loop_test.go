package consul

import (
	"context"
	"testing"
	"time"
)

func TestLoop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	l := NewLoop()
	started, ended := make(chan struct{}), make(chan struct{})
	served := make(chan error, 1)
	go func() {
		served <- l.Serve(func(ctx context.Context) {
			close(started)
			<-ctx.Done()
			close(ended)
		})
	}()
	<-started
	if err := l.Serve(nil); err == nil {
		t.Error("a second Serve did not fail")
	}
	if err := l.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case <-ended:
	default:
		t.Error("Shutdown returned before the watch ended")
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if err := l.Shutdown(ctx); err != nil {
		t.Errorf("a second Shutdown: %v", err)
	}

	// Off (nil watch): Serve waits for Shutdown.
	off := NewLoop()
	go func() { served <- off.Serve(nil) }()
	for !off.serving.Load() {
		time.Sleep(time.Millisecond)
	}
	if err := off.Shutdown(ctx); err != nil || <-served != nil {
		t.Errorf("off: Shutdown %v", err)
	}

	// Shutdown before Serve: Serve returns at once.
	early := NewLoop()
	if err := early.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := early.Serve(func(ctx context.Context) { <-ctx.Done() }); err != nil {
		t.Errorf("Serve after Shutdown: %v", err)
	}

	// A watch that does not end: Shutdown gives up when ctx ends.
	stuck := NewLoop()
	release := make(chan struct{})
	defer close(release)
	go func() { _ = stuck.Serve(func(context.Context) { <-release }) }()
	for !stuck.serving.Load() {
		time.Sleep(time.Millisecond)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancelShort()
	if err := stuck.Shutdown(short); err == nil {
		t.Error("Shutdown of a stuck watch returned nil")
	}
}
