// Package lifecycle runs a service's long-running parts together and stops
// them in order: when the context ends (SIGTERM) or one part fails, every
// part is shut down in the reverse of its start order within one deadline.
// Starting the admin server first and the gRPC server last therefore means
// the gRPC server drains first and readiness and metrics stay up until the
// very end.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// Component is one long-running part of a service.
type Component interface {
	// Name identifies the component in logs and errors.
	Name() string
	// Serve blocks until the component stops; it returns nil after Shutdown.
	Serve() error
	// Shutdown stops the component, finishing in-flight work until ctx ends.
	Shutdown(ctx context.Context) error
}

// Run serves every component until ctx is done or one of them fails, then
// shuts all of them down in reverse order, sharing a deadline of timeout.
// It returns nil after a clean shutdown that ctx asked for.
func Run(ctx context.Context, log logrus.FieldLogger, timeout time.Duration, components ...Component) error {
	served := make(chan error, len(components))
	for _, c := range components {
		go func() {
			err := c.Serve()
			if err != nil {
				err = fmt.Errorf("%s: %w", c.Name(), err)
			}
			served <- err
		}()
	}

	var failure error
	running := len(components)
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case failure = <-served:
		running--
		if failure == nil {
			failure = errors.New("a component stopped on its own")
		}
		log.WithError(failure).Error("stopping after a failure")
	}

	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	errs := []error{failure}
	for i := len(components) - 1; i >= 0; i-- {
		c := components[i]
		if err := c.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: shutdown: %w", c.Name(), err))
		}
	}
	for ; running > 0; running-- {
		// A part that returned counts even when the last Shutdown used up
		// the deadline (a log flush to an absent Graylog does).
		select {
		case err := <-served:
			errs = append(errs, err)
			continue
		default:
		}
		select {
		case err := <-served:
			errs = append(errs, err)
		case <-sctx.Done():
			errs = append(errs, fmt.Errorf("%d component(s) still running after %s", running, timeout))
			return errors.Join(errs...)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	log.Info("stopped cleanly")
	return nil
}

// HTTPServer is an http.Server on a bound listener as a Component.
type HTTPServer struct {
	name     string
	lis      net.Listener
	srv      *http.Server
	draining atomic.Bool
}

// NewHTTPServer returns a Component serving h on lis, with the timeouts a
// server facing untrusted clients needs.
func NewHTTPServer(name string, lis net.Listener, h http.Handler) *HTTPServer {
	s := &HTTPServer{name: name, lis: lis}
	s.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if s.draining.Load() {
				// Go's server closes the connection after this response.
				w.Header().Set("Connection", "close")
			}
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	return s
}

// Drain makes every later response close its connection ("Connection:
// close"), while the server still answers: call it when the instance stops
// taking new clients (deregistered, not ready), some time before Shutdown.
// Keep-alive clients then open their next connection elsewhere. Shutdown
// alone closes idle keep-alive connections, and a request a client sends on
// one at that instant gets no answer, which it must not retry unless the
// request is idempotent (a POST is not).
func (s *HTTPServer) Drain() { s.draining.Store(true) }

// Name implements Component.
func (s *HTTPServer) Name() string { return s.name }

// Addr returns the address the server listens on.
func (s *HTTPServer) Addr() net.Addr { return s.lis.Addr() }

// Serve implements Component.
func (s *HTTPServer) Serve() error {
	if err := s.srv.Serve(s.lis); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown implements Component: it stops accepting and waits for in-flight
// requests, then closes what is left when ctx ends.
func (s *HTTPServer) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	return err
}

// Close stops a server at once; for one that never served, it releases the
// listener.
func (s *HTTPServer) Close() error {
	err := s.srv.Close()
	_ = s.lis.Close()
	return err
}
