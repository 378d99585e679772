package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	// nats.go is used where natscli v0.5.1 cannot do the job: queue-group
	// subscribers, and a readiness probe for the request/reply responder.
	"github.com/nats-io/nats.go"
)

// queueGroup measures delivery to `members` queue subscribers (one
// connection each, on the subscriber's node) in one group: each message
// goes to exactly one member.
// natscli v0.5.1's `bench sub` has no queue option, hence nats.go here; the
// publisher is still natscli so the offered load matches the other rows.
func (h *Harness) queueGroup(ctx context.Context, t *Topology, members int, size string, msgs int) ([]float64, error) {
	const subject, group = "bench.queue", "workers"
	var (
		received    atomic.Int64
		first, last atomic.Int64 // UnixNano of first and last receipt
		done        = make(chan struct{})
	)
	handler := func(*nats.Msg) {
		n := received.Add(1)
		if n == 1 {
			first.Store(time.Now().UnixNano())
		}
		if n == int64(msgs) {
			last.Store(time.Now().UnixNano())
			close(done)
		}
	}
	for i := 0; i < members; i++ {
		nc, err := nats.Connect(t.Sub.URL(), nats.Name(fmt.Sprintf("bench-queue-%d", i+1)), nats.NoReconnect())
		if err != nil {
			return nil, fmt.Errorf("queue member %d connecting: %w", i+1, err)
		}
		defer nc.Close()
		sub, err := nc.QueueSubscribe(subject, group, handler)
		if err != nil {
			return nil, fmt.Errorf("queue member %d subscribing: %w", i+1, err)
		}
		// Like natscli's subscriber: no client-side drop of pending messages,
		// so any loss is the server's.
		if err := sub.SetPendingLimits(-1, -1); err != nil {
			return nil, err
		}
		// The flush round-trip proves the server has processed the SUB.
		if err := nc.FlushTimeout(5 * time.Second); err != nil {
			return nil, fmt.Errorf("queue member %d flushing: %w", i+1, err)
		}
	}
	if err := t.awaitCrossInterest(ctx); err != nil {
		return nil, err
	}
	_, took, err := h.CLI.Run(ctx, t.Pub.URL(), "pub", subject, "--size", size, "--msgs", countArg(msgs))
	if err != nil {
		return nil, err
	}
	grace := drainGrace(took, h.CLI.Timeout)
	select {
	case <-done:
	case <-time.After(grace):
		return nil, fmt.Errorf("queue group received %d of %d messages %s after the publisher finished (lost messages? slow-consumer disconnect?)%s%s",
			received.Load(), msgs, grace, t.aliveNote(), t.slowConsumerNote())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	elapsed := time.Duration(last.Load() - first.Load())
	if elapsed <= 0 {
		return nil, fmt.Errorf("queue group: no measurable time between first and last message")
	}
	return []float64{float64(msgs) / elapsed.Seconds()}, nil
}

// waitForResponder sends probe requests from s until the natscli service
// answers, so the timed requests never hit "no responders" while it starts. The
// probe cannot skew the result: the service's replies are not counted.
func waitForResponder(ctx context.Context, s *Server, subject string, serve *Process) error {
	nc, err := nats.Connect(s.URL(), nats.Name("bench-probe"), nats.NoReconnect())
	if err != nil {
		return fmt.Errorf("probe connecting: %w", err)
	}
	defer nc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := nc.Request(subject, []byte("probe"), 500*time.Millisecond)
		if err == nil {
			return nil
		}
		if serve.Exited() {
			return fmt.Errorf("%s exited: %v%s", serve.name, serve.waitErr, serve.stderrTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no reply on %s within 10s: %v", subject, err)
		}
		if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("probing %s: %w", subject, err)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}
