package hosted

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/verigate/verigate/directory"
	"github.com/verigate/verigate/entra"
	"github.com/verigate/verigate/verify"
)

// Errors of a FlowStore.
var (
	// ErrFlowNotFound: no flow with that id, or it has outlived its TTL.
	ErrFlowNotFound = errors.New("hosted: flow not found")
	// ErrFlowFinished: the flow was finished already (its answer to
	// Entra was written once, and is never written again).
	ErrFlowFinished = errors.New("hosted: flow already finished")
	// ErrFlowExists: Create was given an id that is taken.
	ErrFlowExists = errors.New("hosted: flow id taken")
)

// Flow is one person's way from Entra's redirect to the answer posted
// back. Its fixed part is written once by Create; State changes with each
// send; Finished is set once by Finish.
type Flow struct {
	ID string `json:"id"`
	// SecretHash is the SHA-256 of the session secret in the browser's
	// cookie: the store never holds the secret itself.
	SecretHash []byte `json:"secret_hash"`
	// CSRF is the token every form of the page carries.
	CSRF    string         `json:"csrf"`
	Request *entra.Request `json:"request"`
	// Number is the directory's number the page calls or texts (E.164;
	// only ever shown masked).
	Number    string         `json:"number"`
	Kind      directory.Kind `json:"kind"`
	Locale    string         `json:"locale"`
	ClientIP  string         `json:"client_ip,omitempty"`
	CreatedAt time.Time      `json:"created_at"`
	ExpiresAt time.Time      `json:"expires_at"`

	State    State `json:"-"`
	Finished bool  `json:"-"`
}

// State is what the page's sends change.
type State struct {
	// VerificationID is the verification the page follows: the last one
	// started (a resend keeps the id; a start after a final one makes a
	// new one).
	VerificationID string         `json:"vid,omitempty"`
	Channel        verify.Channel `json:"channel,omitempty"`
	// SentAt is when the last send was asked for, for the resend
	// cool-down.
	SentAt time.Time `json:"sent_at"`
	// NoSMS is set once the Service refused a text to the number (a
	// landline the router knows as one).
	NoSMS bool `json:"no_sms,omitempty"`
	// Notice is why the last send did not go (a limit's message), shown
	// on the page until a send goes; NoticeLang is its language when it
	// is not the page's.
	Notice     string `json:"notice,omitempty"`
	NoticeLang string `json:"notice_lang,omitempty"`
}

// FlowStore keeps flows for their lifetime. Every method is one atomic
// step, so that two requests of one flow (two tabs, a replayed form)
// cannot both finish it.
type FlowStore interface {
	// Create stores f, new, until f.ExpiresAt plus grace. ErrFlowExists
	// when the id is taken.
	Create(ctx context.Context, f *Flow, ttl time.Duration) error
	// Get returns the flow. ErrFlowNotFound.
	Get(ctx context.Context, id string) (*Flow, error)
	// SetState replaces the flow's State. ErrFlowNotFound;
	// ErrFlowFinished once the flow is finished.
	SetState(ctx context.Context, id string, s State) error
	// Finish marks the flow finished and returns it, once: a second
	// Finish gets ErrFlowFinished.
	Finish(ctx context.Context, id string) (*Flow, error)
}

// MemoryStore is a FlowStore in process, for one gateway (--dev, tests).
type MemoryStore struct {
	now   func() time.Time
	mu    sync.Mutex
	flows map[string]*memFlow
}

type memFlow struct {
	f     Flow
	until time.Time
}

// NewMemoryStore returns an empty MemoryStore on clock now (time.Now if
// nil).
func NewMemoryStore(now func() time.Time) *MemoryStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{now: now, flows: map[string]*memFlow{}}
}

var _ FlowStore = (*MemoryStore)(nil)

// Create implements FlowStore. Expired flows are swept here, so the map
// stays bounded by the flows of one lifetime.
func (m *MemoryStore) Create(_ context.Context, f *Flow, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for id, e := range m.flows {
		if !now.Before(e.until) {
			delete(m.flows, id)
		}
	}
	if _, ok := m.flows[f.ID]; ok {
		return ErrFlowExists
	}
	c := *f
	m.flows[f.ID] = &memFlow{f: c, until: now.Add(ttl)}
	return nil
}

func (m *MemoryStore) live(id string) (*memFlow, error) {
	e, ok := m.flows[id]
	if !ok || !m.now().Before(e.until) {
		return nil, ErrFlowNotFound
	}
	return e, nil
}

// Get implements FlowStore.
func (m *MemoryStore) Get(_ context.Context, id string) (*Flow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.live(id)
	if err != nil {
		return nil, err
	}
	c := e.f
	return &c, nil
}

// SetState implements FlowStore.
func (m *MemoryStore) SetState(_ context.Context, id string, s State) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.live(id)
	if err != nil {
		return err
	}
	if e.f.Finished {
		return ErrFlowFinished
	}
	e.f.State = s
	return nil
}

// Finish implements FlowStore.
func (m *MemoryStore) Finish(_ context.Context, id string) (*Flow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.live(id)
	if err != nil {
		return nil, err
	}
	if e.f.Finished {
		return nil, ErrFlowFinished
	}
	e.f.Finished = true
	c := e.f
	return &c, nil
}
