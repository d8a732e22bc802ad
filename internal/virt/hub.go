package virt

import (
	"context"
	"sync"

	libvirt "github.com/digitalocean/go-libvirt"
)

// hub shares libvirt's event registrations among the subscribers of one connection. libvirt
// refuses a second registration of an event for the same domain filter on one connection ("event
// callback already tracked": virObjectEventCallbackListAddID in libvirt's src/conf/object_event.c;
// libvirt's own client multiplexes its callbacks over one registration). go-libvirt does not, so
// the hub does: one registration per event ID, for all domains, and one per domain for QEMU
// monitor events, each made on first use and kept while the connection lives (dropping one while
// a new subscriber registers again would race with its deregistration).
type hub struct {
	ctx    context.Context // the connection's life; the registrations end with it
	cancel context.CancelFunc
	mu     sync.Mutex
	ups    map[upKey]*upstream
}

func newHub() *hub {
	ctx, cancel := context.WithCancel(context.Background())
	return &hub{ctx: ctx, cancel: cancel, ups: map[upKey]*upstream{}}
}

// upKey names a registration: a domain event ID, or the QEMU monitor events of a domain (by
// UUID: a new domain of the same name is another registration).
type upKey struct {
	qemu bool
	id   libvirt.DomainEventID
	uuid libvirt.UUID
}

// upstream is one registration and the queues it fills.
type upstream struct {
	mu    sync.Mutex
	subs  map[*queue]bool
	ended bool
}

// join adds q to the registration key names, making it with open if there is none yet. Events
// that come after join returns reach q.
func join[T any](h *hub, key upKey, q *queue, open func(context.Context) (<-chan T, error)) (*upstream, error) {
	h.mu.Lock()
	up, ok := h.ups[key]
	if !ok {
		src, err := open(h.ctx)
		if err != nil {
			h.mu.Unlock()
			return nil, err
		}
		up = &upstream{subs: map[*queue]bool{}}
		h.ups[key] = up
		go func() {
			for v := range src {
				up.mu.Lock()
				for q := range up.subs {
					q.push(v)
				}
				up.mu.Unlock()
			}
			h.mu.Lock()
			if h.ups[key] == up {
				delete(h.ups, key)
			}
			h.mu.Unlock()
			up.mu.Lock()
			up.ended = true
			for q := range up.subs {
				q.end()
			}
			up.mu.Unlock()
		}()
	}
	h.mu.Unlock()
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.ended {
		return nil, ErrConnectionLost
	}
	up.subs[q] = true
	return up, nil
}

// leave takes q off the registrations it joined.
func (h *hub) leave(q *queue, ups []*upstream) {
	for _, up := range ups {
		up.mu.Lock()
		delete(up.subs, q)
		up.mu.Unlock()
	}
}

// queue is one subscriber's unbounded buffer: a registration never waits for a slow reader.
type queue struct {
	mu    sync.Mutex
	items []any
	ended bool
	wake  chan struct{}
}

func newQueue() *queue { return &queue{wake: make(chan struct{}, 1)} }

func (q *queue) push(v any) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	q.signal()
}

// end says no more will come (the connection is gone): pop returns what is queued, then stops.
func (q *queue) end() {
	q.mu.Lock()
	q.ended = true
	q.mu.Unlock()
	q.signal()
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop returns the next item; ok is false once the queue ended and is empty, or ctx ended.
func (q *queue) pop(ctx context.Context) (v any, ok bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			v = q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
			q.mu.Unlock()
			return v, true
		}
		ended := q.ended
		q.mu.Unlock()
		if ended {
			return nil, false
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return nil, false
		}
	}
}
