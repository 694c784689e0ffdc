package consul

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// Loop is the lifecycle of a component that follows a value in Consul (the
// fault watcher, the canary weights): Serve runs its watch until Shutdown,
// which waits for the watch to end. Make one with NewLoop.
type Loop struct {
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	serving  atomic.Bool
}

// NewLoop returns a Loop that has not served yet.
func NewLoop() *Loop {
	return &Loop{stop: make(chan struct{}), done: make(chan struct{})}
}

// Serve runs watch with a context that Shutdown cancels, and returns when
// watch does; with a nil watch (the component is off) it just waits for
// Shutdown. A Loop serves once: a second Serve is an error.
func (l *Loop) Serve(watch func(ctx context.Context)) error {
	if !l.serving.CompareAndSwap(false, true) {
		return errors.New("consul: already serving")
	}
	defer close(l.done)
	if watch == nil {
		<-l.stop
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-l.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	watch(ctx)
	return nil
}

// Shutdown ends the watch and waits for Serve to return, at most until ctx
// ends. Before Serve, it only makes a later Serve return at once.
func (l *Loop) Shutdown(ctx context.Context) error {
	l.stopOnce.Do(func() { close(l.stop) })
	if !l.serving.Load() {
		return nil
	}
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
