// Package storetest is the contract test suite of verify.Store: every
// behaviour the doc comments of verify/interfaces.go promise, run the same
// way against each implementation (store.Limited on a store.Memory, store.Redis).
//
// Time comes from the arguments (the now of Start, CheckQuery.Now,
// Event.At), so the suite runs on a fake clock and never sleeps.
package storetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/verigate/verigate/verify"
)

// NewStore returns an empty store for one test. Implementations sharing a
// server give each call its own key space.
type NewStore func(t *testing.T) verify.Store

// T0 is the suite's clock start: whole seconds, so every implementation
// keeps it exactly.
var T0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	lifetime    = 10 * time.Minute
	maxAttempts = 3
	tenantA     = "tenant-a"
	tenantB     = "tenant-b"
)

var hasher = func() *verify.Hasher {
	h, err := verify.NewHasher([]byte("storetest-secret-key-0123456789"))
	if err != nil {
		panic(err)
	}
	return h
}()

func hash(tenant, code string) string { return hasher.Hash(tenant, code) }

// sealed is code sealed for the tenant's verification id, as the Service
// stores it.
func sealed(t testing.TB, tenant, id, code string) string {
	t.Helper()
	s, err := hasher.SealCode(rand.Reader, tenant, id, code)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Number returns a German mobile number no other test uses.
func Number(t testing.TB) string {
	t.Helper()
	n, err := rand.Int(rand.Reader, big.NewInt(1e8))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("+49151%08d", n)
}

// NewVerification returns a fresh pending verification as verify.Service
// makes one, started at now.
func NewVerification(t testing.TB, tenant, to string, now time.Time) *verify.Verification {
	t.Helper()
	id, err := verify.NewID(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &verify.Verification{
		ID: id, Tenant: tenant, To: to, Country: "DE",
		Channel: verify.ChannelSMS, CallMode: verify.CallModeApprove, Locale: "en",
		UserID: "user-1", ClientIP: "192.0.2.7", CallbackURL: "https://idp.example/cb",
		Status: verify.StatusPending, MaxAttempts: maxAttempts, Sends: 1,
		Route:     verify.Route{Channel: verify.ChannelSMS, Provider: "console", Reasons: []string{"requested"}},
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(lifetime),
	}
}

// Subject is the send that starting v counts against the limits.
func Subject(v *verify.Verification) verify.SendSubject {
	return verify.SendSubject{Tenant: v.Tenant, To: v.To, Country: v.Country, Channel: v.Channel,
		UserID: v.UserID, ClientIP: v.ClientIP, SendID: v.ID}
}

type fixture struct {
	t   *testing.T
	s   verify.Store
	ctx context.Context
}

// with returns f for the subtest t.
func (f fixture) with(t *testing.T) fixture { f.t = t; return f }

func (f fixture) start(tenant, to, code string, now time.Time) (*verify.Verification, bool) {
	f.t.Helper()
	in := NewVerification(f.t, tenant, to, now)
	in.SealedCode = sealed(f.t, tenant, in.ID, code)
	v, resent, err := f.s.Start(f.ctx, Subject(in), in, hash(tenant, code), now)
	if err != nil {
		f.t.Fatalf("Start: %v", err)
	}
	return v, resent
}

func (f fixture) get(tenant, id string) *verify.Verification {
	f.t.Helper()
	v, err := f.s.Get(f.ctx, tenant, id)
	if err != nil {
		f.t.Fatalf("Get(%s): %v", id, err)
	}
	return v
}

func (f fixture) check(q verify.CheckQuery) *verify.Verification {
	f.t.Helper()
	v, err := f.s.Check(f.ctx, q)
	if err != nil {
		f.t.Fatalf("Check(%+v): %v", q, err)
	}
	return v
}

func eventTypes(v *verify.Verification) []verify.EventType {
	out := make([]verify.EventType, len(v.Events))
	for i, e := range v.Events {
		out[i] = e.Type
	}
	return out
}

func wantEvents(t *testing.T, v *verify.Verification, want ...verify.EventType) {
	t.Helper()
	got := eventTypes(v)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events = %v, want %v", got, want)
	}
}

func wantNotPending(t *testing.T, err error, status verify.Status) {
	t.Helper()
	var np *verify.NotPendingError
	if !errors.As(err, &np) || !errors.Is(err, verify.ErrNotPending) {
		t.Fatalf("err = %v, want *NotPendingError", err)
	}
	if np.Status != status {
		t.Errorf("NotPendingError.Status = %s, want %s", np.Status, status)
	}
}

// Run runs the whole contract against the stores newStore makes.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, f fixture)
	}{
		{"StartNew", testStartNew},
		{"Resend", testResend},
		{"ResendAfterExpiry", testResendAfterExpiry},
		{"OldIDStaysReadable", testOldIDStaysReadable},
		{"TenantIsolation", testTenantIsolation},
		{"Check", testCheck},
		{"CheckLock", testCheckLock},
		{"CheckLockLongWindow", testCheckLockLongWindow},
		{"Transition", testTransition},
		{"AddEvent", testAddEvent},
		{"ConcurrentChecks", testConcurrentChecks},
		{"ConcurrentStarts", testConcurrentStarts},
		{"Messages", testMessages},
		{"Expire", testExpire},
		{"ConcurrentExpire", testConcurrentExpire},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			tc.run(t, fixture{t: t, s: newStore(t), ctx: ctx})
		})
	}
}

func testStartNew(t *testing.T, f fixture) {
	to := Number(t)
	in := NewVerification(t, tenantA, to, T0)
	v, resent, err := f.s.Start(f.ctx, Subject(in), in, hash(tenantA, "123456"), T0)
	if err != nil {
		t.Fatal(err)
	}
	if resent {
		t.Error("resent = true for a first start")
	}
	got := f.get(tenantA, in.ID)
	for _, v := range []*verify.Verification{v, got} {
		if v.ID != in.ID || v.Tenant != tenantA || v.To != to || v.Country != "DE" || v.Status != verify.StatusPending ||
			v.Channel != verify.ChannelSMS || v.CallMode != verify.CallModeApprove || v.Locale != "en" ||
			v.UserID != "user-1" || v.ClientIP != "192.0.2.7" || v.CallbackURL != "https://idp.example/cb" ||
			v.Sends != 1 || v.Attempts != 0 || v.MaxAttempts != maxAttempts {
			t.Errorf("stored %+v, want the fields of %+v", v, in)
		}
		if len(v.CodeHashes) != 1 || v.CodeHashes[0] != hash(tenantA, "123456") {
			t.Errorf("CodeHashes = %v, want the one hash", v.CodeHashes)
		}
		if v.Route.Provider != "console" || v.Route.Channel != verify.ChannelSMS || fmt.Sprint(v.Route.Reasons) != "[requested]" {
			t.Errorf("Route = %+v", v.Route)
		}
		if !v.CreatedAt.Equal(T0) || !v.UpdatedAt.Equal(T0) || !v.ExpiresAt.Equal(T0.Add(lifetime)) {
			t.Errorf("times = %v %v %v", v.CreatedAt, v.UpdatedAt, v.ExpiresAt)
		}
		wantEvents(t, v, verify.EventCreated)
		if len(v.Events) == 1 && (!v.Events[0].At.Equal(T0) || v.Events[0].Channel != verify.ChannelSMS || v.Events[0].Provider != "console") {
			t.Errorf("created event = %+v", v.Events[0])
		}
	}
	// What the store returns is a copy: changing it changes nothing stored.
	v.Status, v.CodeHashes[0] = verify.StatusApproved, "x"
	if again := f.get(tenantA, in.ID); again.Status != verify.StatusPending || again.CodeHashes[0] == "x" {
		t.Error("changing a returned verification changed the store")
	}
}

func testResend(t *testing.T, f fixture) {
	for _, tc := range []struct {
		name string
		// legacy stores the first send as an earlier version did, without
		// a sealed code: that version sent a fresh code on every resend.
		legacy bool
		valid  []string // codes that approve after the resend
		wrong  []string // codes that do not
	}{
		{"keeps its one code", false, []string{"111111"}, []string{"222222"}},
		{"earlier version's verification takes the new code too", true, []string{"111111", "222222"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := f.with(t)
			to := Number(t)
			first := NewVerification(t, tenantA, to, T0)
			if !tc.legacy {
				first.SealedCode = sealed(t, tenantA, first.ID, "111111")
			}
			if _, _, err := f.s.Start(f.ctx, Subject(first), first, hash(tenantA, "111111"), T0); err != nil {
				t.Fatal(err)
			}
			in := NewVerification(t, tenantA, to, T0.Add(time.Minute))
			in.SealedCode = sealed(t, tenantA, in.ID, "222222")
			in.Channel, in.CallMode, in.Locale = verify.ChannelCall, verify.CallModeCode, "de"
			in.Route = verify.Route{Channel: verify.ChannelCall, Provider: "sip", Trunk: "pbx"}
			v, resent, err := f.s.Start(f.ctx, Subject(in), in, hash(tenantA, "222222"), T0.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if !resent || v.ID != first.ID {
				t.Fatalf("resent = %v, id = %s; want a resend of %s", resent, v.ID, first.ID)
			}
			if v.Sends != 2 || v.Channel != verify.ChannelCall || v.CallMode != verify.CallModeCode || v.Locale != "de" ||
				v.Route.Provider != "sip" || v.Route.Trunk != "pbx" {
				t.Errorf("after resend: %+v", v)
			}
			var wantHashes []string
			for _, c := range tc.valid {
				wantHashes = append(wantHashes, hash(tenantA, c))
			}
			if fmt.Sprint(v.CodeHashes) != fmt.Sprint(wantHashes) {
				t.Errorf("CodeHashes = %v, want %v (codes %v)", v.CodeHashes, wantHashes, tc.valid)
			}
			// The sealed code is the one resends send: the first one's. An
			// earlier version's verification keeps none (the new start's
			// seal is bound to its own id) and takes each resend's code.
			wantSealed := first.SealedCode
			if v.SealedCode != wantSealed || f.get(tenantA, first.ID).SealedCode != wantSealed {
				t.Errorf("SealedCode = %q, want %q", v.SealedCode, wantSealed)
			}
			if !v.ExpiresAt.Equal(first.ExpiresAt) {
				t.Errorf("ExpiresAt moved from %v to %v on resend", first.ExpiresAt, v.ExpiresAt)
			}
			wantEvents(t, v, verify.EventCreated, verify.EventResent)
			if _, err := f.s.Get(f.ctx, tenantA, in.ID); !errors.Is(err, verify.ErrNotFound) {
				t.Errorf("Get(unused id of the resend) err = %v, want ErrNotFound", err)
			}
			now := T0.Add(2 * time.Minute)
			for _, c := range tc.wrong {
				if got := f.check(verify.CheckQuery{Tenant: tenantA, ID: first.ID, Hash: hash(tenantA, c), Now: now}); got.Status != verify.StatusPending {
					t.Errorf("check of the resend's own code %s: status %s, want pending (one code per verification)", c, got.Status)
				}
			}
			for _, c := range tc.valid {
				t.Run(c, func(t *testing.T) {
					// Each valid code on a verification of its own: the
					// first approval would end the shared one.
					f := f.with(t)
					to := Number(t)
					a := NewVerification(t, tenantA, to, T0)
					if !tc.legacy {
						a.SealedCode = sealed(t, tenantA, a.ID, "111111")
					}
					f.s.Start(f.ctx, Subject(a), a, hash(tenantA, "111111"), T0)
					b := NewVerification(t, tenantA, to, T0.Add(time.Minute))
					b.SealedCode = sealed(t, tenantA, b.ID, "222222")
					f.s.Start(f.ctx, Subject(b), b, hash(tenantA, "222222"), T0.Add(time.Minute))
					if got := f.check(verify.CheckQuery{Tenant: tenantA, ID: a.ID, Hash: hash(tenantA, c), Now: now}); got.Status != verify.StatusApproved {
						t.Errorf("check of %s after resend: status %s, want approved", c, got.Status)
					}
				})
			}
		})
	}
}

func testResendAfterExpiry(t *testing.T, f fixture) {
	to := Number(t)
	old, _ := f.start(tenantA, to, "111111", T0)
	fresh, resent := f.start(tenantA, to, "222222", T0.Add(lifetime))
	if resent || fresh.ID == old.ID {
		t.Fatalf("start after expiry: resent %v, id %s (old %s); want a new verification", resent, fresh.ID, old.ID)
	}
	if fresh.Sends != 1 || fresh.Status != verify.StatusPending {
		t.Errorf("new verification: %+v", fresh)
	}
	o := f.get(tenantA, old.ID)
	if o.Status != verify.StatusExpired {
		t.Errorf("old status = %s, want expired", o.Status)
	}
	wantEvents(t, o, verify.EventCreated, verify.EventExpired)
	// The old code is not valid for the new verification.
	v := f.check(verify.CheckQuery{Tenant: tenantA, To: to, Hash: hash(tenantA, "111111"), Now: T0.Add(lifetime + time.Second)})
	if v.ID != fresh.ID || v.Status != verify.StatusPending || v.Attempts != 1 {
		t.Errorf("old code on the new verification: %+v", v)
	}
}

func testOldIDStaysReadable(t *testing.T, f fixture) {
	to := Number(t)
	old, _ := f.start(tenantA, to, "111111", T0)
	f.check(verify.CheckQuery{Tenant: tenantA, ID: old.ID, Hash: hash(tenantA, "111111"), Now: T0.Add(time.Second)})
	fresh, resent := f.start(tenantA, to, "222222", T0.Add(time.Minute))
	if resent || fresh.ID == old.ID {
		t.Fatalf("start after approval: resent %v, id %s; want a new verification", resent, fresh.ID)
	}
	o := f.get(tenantA, old.ID)
	if o.ID != old.ID || o.Status != verify.StatusApproved || len(o.CodeHashes) != 1 {
		t.Errorf("old id reads %+v, want the approved old verification", o)
	}
	_, err := f.s.Check(f.ctx, verify.CheckQuery{Tenant: tenantA, ID: old.ID, Hash: hash(tenantA, "222222"), Now: T0.Add(2 * time.Minute)})
	wantNotPending(t, err, verify.StatusApproved)
	v := f.check(verify.CheckQuery{Tenant: tenantA, To: to, Hash: hash(tenantA, "222222"), Now: T0.Add(2 * time.Minute)})
	if v.ID != fresh.ID || v.Status != verify.StatusApproved {
		t.Errorf("check by number: %+v, want the new verification approved", v)
	}
}

func testTenantIsolation(t *testing.T, f fixture) {
	to := Number(t)
	v, _ := f.start(tenantA, to, "111111", T0)
	now := T0.Add(time.Second)
	ops := []struct {
		name string
		do   func() error
	}{
		{"Get", func() error { _, err := f.s.Get(f.ctx, tenantB, v.ID); return err }},
		{"Check by id", func() error {
			_, err := f.s.Check(f.ctx, verify.CheckQuery{Tenant: tenantB, ID: v.ID, Hash: hash(tenantB, "111111"), Now: now})
			return err
		}},
		{"Check by number", func() error {
			_, err := f.s.Check(f.ctx, verify.CheckQuery{Tenant: tenantB, To: to, Hash: hash(tenantB, "111111"), Now: now})
			return err
		}},
		{"Transition", func() error {
			_, err := f.s.Transition(f.ctx, tenantB, v.ID, verify.StatusCanceled, "", verify.Event{Type: verify.EventCanceled, At: now})
			return err
		}},
	}
	for _, op := range ops {
		if err := op.do(); !errors.Is(err, verify.ErrNotFound) {
			t.Errorf("%s by another tenant: err = %v, want ErrNotFound", op.name, err)
		}
	}
	if got := f.get(tenantA, v.ID); got.Status != verify.StatusPending || got.Attempts != 0 || len(got.Events) != 1 {
		t.Errorf("another tenant's calls changed the verification: %+v", got)
	}
	other, resent := f.start(tenantB, to, "222222", now)
	if resent || other.ID == v.ID {
		t.Error("another tenant's start for the same number resent this tenant's verification")
	}
	if got := f.get("", v.ID); got.ID != v.ID {
		t.Errorf(`Get with tenant "" (providers) = %s, want %s`, got.ID, v.ID)
	}
}

func testCheck(t *testing.T, f fixture) {
	right, wrong := "123456", "654321"
	type step struct {
		code   string
		at     time.Duration // after T0
		status verify.Status // after the check; "" when an error is wanted
		errIs  error
		np     verify.Status // the NotPendingError's status when errIs is ErrNotPending
	}
	tests := []struct {
		name     string
		byNumber bool
		cancel   bool // cancel before the steps
		steps    []step
		attempts int
		events   []verify.EventType
	}{
		{name: "right code by id", steps: []step{{code: right, at: time.Second, status: verify.StatusApproved}},
			attempts: 1, events: []verify.EventType{verify.EventCreated, verify.EventApproved}},
		{name: "right code by number", byNumber: true, steps: []step{{code: right, at: time.Second, status: verify.StatusApproved}},
			attempts: 1, events: []verify.EventType{verify.EventCreated, verify.EventApproved}},
		{name: "wrong then right", steps: []step{
			{code: wrong, at: time.Second, status: verify.StatusPending},
			{code: right, at: 2 * time.Second, status: verify.StatusApproved},
		}, attempts: 2, events: []verify.EventType{verify.EventCreated, verify.EventCheckFailed, verify.EventApproved}},
		{name: "max attempts", steps: []step{
			{code: wrong, at: time.Second, status: verify.StatusPending},
			{code: wrong, at: 2 * time.Second, status: verify.StatusPending},
			{code: wrong, at: 3 * time.Second, status: verify.StatusMaxAttemptsReached},
			{code: right, at: 4 * time.Second, errIs: verify.ErrNotPending, np: verify.StatusMaxAttemptsReached},
		}, attempts: 3, events: []verify.EventType{verify.EventCreated, verify.EventCheckFailed, verify.EventCheckFailed,
			verify.EventCheckFailed, verify.EventMaxAttemptsReached}},
		{name: "expired", steps: []step{
			{code: right, at: lifetime, status: verify.StatusExpired},
			{code: right, at: lifetime + time.Second, errIs: verify.ErrNotPending, np: verify.StatusExpired},
		}, attempts: 0, events: []verify.EventType{verify.EventCreated, verify.EventExpired}},
		{name: "approved is final", steps: []step{
			{code: right, at: time.Second, status: verify.StatusApproved},
			{code: right, at: 2 * time.Second, errIs: verify.ErrNotPending, np: verify.StatusApproved},
		}, attempts: 1, events: []verify.EventType{verify.EventCreated, verify.EventApproved}},
		{name: "canceled", cancel: true, steps: []step{
			{code: right, at: time.Second, errIs: verify.ErrNotPending, np: verify.StatusCanceled},
		}, attempts: 0, events: []verify.EventType{verify.EventCreated, verify.EventCanceled}},
		{name: "ended, by number", byNumber: true, steps: []step{
			{code: right, at: time.Second, status: verify.StatusApproved},
			{code: right, at: 2 * time.Second, errIs: verify.ErrNotFound},
		}, attempts: 1, events: []verify.EventType{verify.EventCreated, verify.EventApproved}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := f.with(t)
			to := Number(t)
			v, _ := f.start(tenantA, to, right, T0)
			if tc.cancel {
				if _, err := f.s.Transition(f.ctx, tenantA, v.ID, verify.StatusCanceled, "", verify.Event{Type: verify.EventCanceled, At: T0}); err != nil {
					t.Fatal(err)
				}
			}
			for i, s := range tc.steps {
				q := verify.CheckQuery{Tenant: tenantA, ID: v.ID, Hash: hash(tenantA, s.code), Now: T0.Add(s.at)}
				if tc.byNumber {
					q.ID, q.To = "", to
				}
				got, err := f.s.Check(f.ctx, q)
				if s.errIs != nil {
					if !errors.Is(err, s.errIs) {
						t.Fatalf("step %d: err = %v, want %v", i, err, s.errIs)
					}
					if s.errIs == verify.ErrNotPending {
						wantNotPending(t, err, s.np)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if got.ID != v.ID || got.Status != s.status {
					t.Fatalf("step %d: id %s status %s, want %s %s", i, got.ID, got.Status, v.ID, s.status)
				}
				if s.status == verify.StatusPending && got.AttemptsLeft() != maxAttempts-got.Attempts {
					t.Errorf("step %d: AttemptsLeft = %d", i, got.AttemptsLeft())
				}
				if s.status != verify.StatusExpired && !got.UpdatedAt.Equal(T0.Add(s.at)) {
					t.Errorf("step %d: UpdatedAt = %v, want %v", i, got.UpdatedAt, T0.Add(s.at))
				}
			}
			final := f.get(tenantA, v.ID)
			if final.Attempts != tc.attempts {
				t.Errorf("attempts = %d, want %d", final.Attempts, tc.attempts)
			}
			wantEvents(t, final, tc.events...)
		})
	}
	t.Run("unknown", func(t *testing.T) {
		f := f.with(t)
		for _, q := range []verify.CheckQuery{
			{Tenant: tenantA, ID: "VE00000000000000000000000000000000", Hash: hash(tenantA, right), Now: T0},
			{Tenant: tenantA, To: Number(t), Hash: hash(tenantA, right), Now: T0},
		} {
			if _, err := f.s.Check(f.ctx, q); !errors.Is(err, verify.ErrNotFound) {
				t.Errorf("Check(%+v) err = %v, want ErrNotFound", q, err)
			}
		}
	})
}

// testCheckLockLongWindow: failures spread too thin for the short window
// still lock the number once LongMax of them fall within LongWindow, for
// as long as the oldest of those stays in it, across the store's own
// clean-ups.
func testCheckLockLongWindow(t *testing.T, f fixture) {
	const day = 24 * time.Hour
	lock := verify.CheckLock{Max: 3, Window: time.Hour, LongMax: 4, LongWindow: 30 * day}
	to := Number(t)
	wrong := hash(tenantA, "000000")
	// Four failures two days apart, each on a verification of its own:
	// never three within an hour.
	var last *verify.Verification
	for i := range 4 {
		at := T0.Add(time.Duration(2*i) * day)
		last, _ = f.start(tenantA, to, "111111", at)
		f.check(verify.CheckQuery{Tenant: tenantA, ID: last.ID, Hash: wrong, Now: at.Add(time.Second), Lock: lock})
	}
	// Twenty days on (the stores' clean-ups have run: a start sweeps),
	// the number is still locked until the first failure is 30 days old.
	now := T0.Add(20 * day)
	v, _ := f.start(tenantA, to, "222222", now)
	_, err := f.s.Check(f.ctx, verify.CheckQuery{Tenant: tenantA, ID: v.ID, Hash: hash(tenantA, "222222"), Now: now, Lock: lock})
	var le *verify.LimitError
	if !errors.As(err, &le) {
		t.Fatalf("check after %d failures in %v: err = %v, want *LimitError", lock.LongMax, lock.LongWindow, err)
	}
	if want := T0.Add(time.Second + 30*day).Sub(now); le.Policy != "failed_checks" || le.RetryAfter != want {
		t.Errorf("LimitError = %+v, want policy failed_checks, RetryAfter %v", le, want)
	}
	// Once the first failure is 30 days old, checks go through again.
	later := T0.Add(time.Second + 30*day)
	v, _ = f.start(tenantA, to, "333333", later)
	if got := f.check(verify.CheckQuery{Tenant: tenantA, ID: v.ID, Hash: hash(tenantA, "333333"), Now: later, Lock: lock}); got.Status != verify.StatusApproved {
		t.Errorf("check after the long window: %s, want approved", got.Status)
	}
}

func testCheckLock(t *testing.T, f fixture) {
	lock := verify.CheckLock{Max: 3, Window: time.Hour}
	to := Number(t)
	wrong := hash(tenantA, "000000")
	v1, _ := f.start(tenantA, to, "111111", T0)
	for i := 1; i <= 2; i++ {
		f.check(verify.CheckQuery{Tenant: tenantA, ID: v1.ID, Hash: wrong, Now: T0.Add(time.Duration(i) * time.Second), Lock: lock})
	}
	if _, err := f.s.Transition(f.ctx, tenantA, v1.ID, verify.StatusCanceled, "", verify.Event{Type: verify.EventCanceled, At: T0.Add(3 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	// The lock counts across verifications of the number.
	v2, _ := f.start(tenantA, to, "222222", T0.Add(4*time.Second))
	f.check(verify.CheckQuery{Tenant: tenantA, ID: v2.ID, Hash: wrong, Now: T0.Add(5 * time.Second), Lock: lock})

	now := T0.Add(10 * time.Second)
	for _, q := range []verify.CheckQuery{
		{Tenant: tenantA, ID: v2.ID, Hash: hash(tenantA, "222222"), Now: now, Lock: lock},
		{Tenant: tenantA, To: to, Hash: hash(tenantA, "222222"), Now: now, Lock: lock},
	} {
		_, err := f.s.Check(f.ctx, q)
		var le *verify.LimitError
		if !errors.As(err, &le) || !errors.Is(err, verify.ErrRateLimited) {
			t.Fatalf("check after %d failures: err = %v, want *LimitError", lock.Max, err)
		}
		// The oldest failure in the window (T0+1s) leaves it at T0+1s+1h.
		if want := T0.Add(time.Second + time.Hour).Sub(now); le.Policy != "failed_checks" || le.RetryAfter != want || le.Channel != "" {
			t.Errorf("LimitError = %+v, want policy failed_checks, RetryAfter %v", le, want)
		}
	}
	if got := f.get(tenantA, v2.ID); got.Attempts != 1 || got.Status != verify.StatusPending {
		t.Errorf("a locked check changed the verification: %+v", got)
	}
	// Other tenants and other numbers are not locked; nor is a check without a lock.
	other, _ := f.start(tenantB, to, "333333", now)
	if got := f.check(verify.CheckQuery{Tenant: tenantB, ID: other.ID, Hash: hash(tenantB, "333333"), Now: now, Lock: lock}); got.Status != verify.StatusApproved {
		t.Errorf("another tenant's check: %s, want approved", got.Status)
	}
	// Once the oldest failure leaves the window, checks go through again.
	later := T0.Add(time.Second + time.Hour)
	if got := f.check(verify.CheckQuery{Tenant: tenantA, ID: v2.ID, Hash: hash(tenantA, "111111"), Now: later, Lock: lock}); got.Status != verify.StatusExpired {
		// v2 expired long ago: the check is let through and finds it expired.
		t.Errorf("check after the window: %s, want expired", got.Status)
	}
	v3, _ := f.start(tenantA, to, "444444", later)
	if got := f.check(verify.CheckQuery{Tenant: tenantA, ID: v3.ID, Hash: hash(tenantA, "444444"), Now: later, Lock: lock}); got.Status != verify.StatusApproved {
		t.Errorf("right code after the window: %s, want approved", got.Status)
	}

	t.Run("off", func(t *testing.T) {
		f := f.with(t)
		to := Number(t)
		v, _ := f.start(tenantA, to, "111111", T0)
		for i := range maxAttempts {
			f.check(verify.CheckQuery{Tenant: tenantA, ID: v.ID, Hash: wrong, Now: T0.Add(time.Duration(i+1) * time.Second)})
		}
		v, _ = f.start(tenantA, to, "222222", T0.Add(time.Minute))
		if got := f.check(verify.CheckQuery{Tenant: tenantA, ID: v.ID, Hash: hash(tenantA, "222222"), Now: T0.Add(time.Minute)}); got.Status != verify.StatusApproved {
			t.Errorf("with Lock.Max 0: %s, want approved", got.Status)
		}
	})
}

func testTransition(t *testing.T, f fixture) {
	t.Run("once", func(t *testing.T) {
		f := f.with(t)
		to := Number(t)
		v, _ := f.start(tenantA, to, "111111", T0)
		ev := verify.Event{Type: verify.EventCallApproved, At: T0.Add(time.Second), Channel: verify.ChannelCall, Provider: "sip", ProviderRef: "call-1", Key: "k1"}
		got, err := f.s.Transition(f.ctx, "", v.ID, verify.StatusApproved, "", ev)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != verify.StatusApproved || !got.UpdatedAt.Equal(ev.At) {
			t.Errorf("after transition: %+v", got)
		}
		wantEvents(t, got, verify.EventCreated, verify.EventCallApproved)
		_, err = f.s.Transition(f.ctx, "", v.ID, verify.StatusApproved, "", ev)
		wantNotPending(t, err, verify.StatusApproved)
		_, err = f.s.Transition(f.ctx, tenantA, v.ID, verify.StatusDenied, "fraud_reported", verify.Event{Type: verify.EventFraudReported, At: T0.Add(2 * time.Second)})
		wantNotPending(t, err, verify.StatusApproved)
		wantEvents(t, f.get(tenantA, v.ID), verify.EventCreated, verify.EventCallApproved)
		// The number has no pending verification any more.
		if _, err := f.s.Check(f.ctx, verify.CheckQuery{Tenant: tenantA, To: to, Hash: hash(tenantA, "111111"), Now: T0.Add(3 * time.Second)}); !errors.Is(err, verify.ErrNotFound) {
			t.Errorf("check by number after transition: %v, want ErrNotFound", err)
		}
		if n, resent := f.start(tenantA, to, "222222", T0.Add(4*time.Second)); resent || n.ID == v.ID {
			t.Error("start after transition resent the ended verification")
		}
	})
	t.Run("reason", func(t *testing.T) {
		f := f.with(t)
		v, _ := f.start(tenantA, Number(t), "111111", T0)
		got, err := f.s.Transition(f.ctx, tenantA, v.ID, verify.StatusDenied, "fraud_reported", verify.Event{Type: verify.EventFraudReported, At: T0.Add(time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != verify.StatusDenied || got.Reason != "fraud_reported" {
			t.Errorf("got %s %q, want denied fraud_reported", got.Status, got.Reason)
		}
		if r := f.get(tenantA, v.ID); r.Reason != "fraud_reported" {
			t.Errorf("stored reason %q", r.Reason)
		}
	})
	t.Run("expired on the way", func(t *testing.T) {
		f := f.with(t)
		v, _ := f.start(tenantA, Number(t), "111111", T0)
		_, err := f.s.Transition(f.ctx, "", v.ID, verify.StatusApproved, "", verify.Event{Type: verify.EventCallApproved, At: T0.Add(lifetime)})
		wantNotPending(t, err, verify.StatusExpired)
		got := f.get(tenantA, v.ID)
		if got.Status != verify.StatusExpired {
			t.Errorf("status %s, want expired", got.Status)
		}
		wantEvents(t, got, verify.EventCreated, verify.EventExpired)
	})
	t.Run("attempts", func(t *testing.T) {
		// After one resend (Sends 2) only the end of attempt 2 (or of an
		// unnumbered one) fails the verification; a # or a fraud report
		// on any call ends it.
		for _, tc := range []struct {
			status     verify.Status
			ev         verify.EventType
			attempt    int
			superseded bool
		}{
			{verify.StatusFailed, verify.EventNoAnswer, 1, true},
			{verify.StatusFailed, verify.EventNoAnswer, 2, false},
			{verify.StatusFailed, verify.EventNoAnswer, 0, false},
			{verify.StatusApproved, verify.EventCallApproved, 1, false},
			{verify.StatusDenied, verify.EventFraudReported, 1, false},
		} {
			t.Run(fmt.Sprintf("%s by attempt %d", tc.status, tc.attempt), func(t *testing.T) {
				f := f.with(t)
				to := Number(t)
				v, _ := f.start(tenantA, to, "111111", T0)
				if r, resent := f.start(tenantA, to, "222222", T0.Add(time.Second)); !resent || r.Sends != 2 {
					t.Fatalf("resend: resent %v, sends %d", resent, r.Sends)
				}
				ev := verify.Event{Type: tc.ev, At: T0.Add(2 * time.Second), Channel: verify.ChannelCall, Provider: "sip",
					ProviderRef: "call-1", Attempt: tc.attempt, Key: "call-1/" + string(tc.ev)}
				got, err := f.s.Transition(f.ctx, "", v.ID, tc.status, string(tc.ev), ev)
				if tc.superseded {
					if !errors.Is(err, verify.ErrSuperseded) {
						t.Fatalf("err = %v, want ErrSuperseded", err)
					}
					after := f.get(tenantA, v.ID)
					if after.Status != verify.StatusPending || after.Reason != "" {
						t.Errorf("a refused transition left %s (%q)", after.Status, after.Reason)
					}
					wantEvents(t, after, verify.EventCreated, verify.EventResent)
					// The refusal kept nothing, not even the event's key:
					// the event can be recorded as history.
					if added, err := f.s.AddEvent(f.ctx, v.ID, ev); err != nil || !added {
						t.Errorf("AddEvent after the refusal: added %v, err %v", added, err)
					}
					if e := f.get(tenantA, v.ID).Events; len(e) != 3 || e[2].Attempt != tc.attempt {
						t.Errorf("recorded %+v, want the event with attempt %d last", e, tc.attempt)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != tc.status {
					t.Errorf("status %s, want %s", got.Status, tc.status)
				}
				wantEvents(t, got, verify.EventCreated, verify.EventResent, tc.ev)
				if e := f.get(tenantA, v.ID).Events; len(e) == 3 && e[2].Attempt != tc.attempt {
					t.Errorf("stored attempt %d, want %d", e[2].Attempt, tc.attempt)
				}
			})
		}
	})
	t.Run("unknown", func(t *testing.T) {
		f := f.with(t)
		if _, err := f.s.Transition(f.ctx, "", "VE00000000000000000000000000000000", verify.StatusCanceled, "", verify.Event{Type: verify.EventCanceled, At: T0}); !errors.Is(err, verify.ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
	})
}

func testAddEvent(t *testing.T, f fixture) {
	v, _ := f.start(tenantA, Number(t), "111111", T0)
	at := T0.Add(1500 * time.Millisecond)
	full := verify.Event{Type: verify.EventDelivered, At: at, Channel: verify.ChannelSMS, Provider: "twilio",
		ProviderRef: "SM123", ErrorCode: "30003", Detail: "line 1\nline \"2\"", Attempt: 1, Key: "SM123:delivered"}
	steps := []struct {
		ev    verify.Event
		added bool
	}{
		{full, true},
		{full, false}, // a provider retry
		{verify.Event{Type: verify.EventSent, At: at}, true},
		{verify.Event{Type: verify.EventSent, At: at}, true}, // no key: no de-duplication
		{verify.Event{Type: verify.EventUndelivered, At: at, Key: "SM123:undelivered"}, true},
	}
	for i, s := range steps {
		added, err := f.s.AddEvent(f.ctx, v.ID, s.ev)
		if err != nil || added != s.added {
			t.Errorf("step %d: added %v err %v, want %v", i, added, err, s.added)
		}
	}
	got := f.get(tenantA, v.ID)
	wantEvents(t, got, verify.EventCreated, verify.EventDelivered, verify.EventSent, verify.EventSent, verify.EventUndelivered)
	if len(got.Events) > 1 {
		e := got.Events[1]
		e.At, e.Key = e.At.UTC(), "" // whether Key is kept is the store's business
		want := full
		want.Key, want.At = "", at.UTC()
		if e != want {
			t.Errorf("event round trip:\n got %+v\nwant %+v", e, want)
		}
	}
	if got.Status != verify.StatusPending {
		t.Errorf("AddEvent changed the status to %s", got.Status)
	}
	if _, err := f.s.AddEvent(f.ctx, "VE00000000000000000000000000000000", full); !errors.Is(err, verify.ErrNotFound) {
		t.Errorf("AddEvent(unknown) err = %v, want ErrNotFound", err)
	}
	// Keys also de-duplicate against an event recorded by Transition.
	ev := verify.Event{Type: verify.EventCompleted, At: at, Key: "call:completed"}
	if _, err := f.s.Transition(f.ctx, "", v.ID, verify.StatusFailed, "completed", ev); err != nil {
		t.Fatal(err)
	}
	if added, err := f.s.AddEvent(f.ctx, v.ID, ev); err != nil || added {
		t.Errorf("AddEvent after Transition with the same key: added %v err %v", added, err)
	}
}

// concurrency is how many goroutines race in the concurrency tests.
const concurrency = 50

func testConcurrentChecks(t *testing.T, f fixture) {
	to := Number(t)
	v, _ := f.start(tenantA, to, "111111", T0)
	var wg sync.WaitGroup
	results := make(chan error, concurrency)
	approved := make(chan *verify.Verification, concurrency)
	for i := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := verify.CheckQuery{Tenant: tenantA, ID: v.ID, Hash: hash(tenantA, "111111"), Now: T0.Add(time.Second)}
			if i%2 == 1 {
				q.ID, q.To = "", to
			}
			got, err := f.s.Check(f.ctx, q)
			if err == nil && got.Status == verify.StatusApproved {
				approved <- got
			}
			results <- err
		}()
	}
	wg.Wait()
	close(results)
	close(approved)
	if n := len(approved); n != 1 {
		t.Errorf("%d of %d concurrent checks approved, want exactly 1", n, concurrency)
	}
	for err := range results {
		if err != nil && !errors.Is(err, verify.ErrNotPending) && !errors.Is(err, verify.ErrNotFound) {
			t.Errorf("concurrent check: %v", err)
		}
	}
	if got := f.get(tenantA, v.ID); got.Attempts != 1 || got.Status != verify.StatusApproved {
		t.Errorf("after the race: attempts %d status %s, want 1 approved", got.Attempts, got.Status)
	}
}

func testConcurrentStarts(t *testing.T, f fixture) {
	to := Number(t)
	var wg sync.WaitGroup
	type result struct {
		v      *verify.Verification
		resent bool
		err    error
	}
	results := make(chan result, concurrency)
	for i := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := NewVerification(t, tenantA, to, T0)
			v, resent, err := f.s.Start(f.ctx, Subject(in), in, hash(tenantA, fmt.Sprintf("%06d", i)), T0)
			results <- result{v, resent, err}
		}()
	}
	wg.Wait()
	close(results)
	ids := map[string]int{}
	created := 0
	for r := range results {
		if r.err != nil {
			t.Fatalf("concurrent start: %v", r.err)
		}
		ids[r.v.ID]++
		if !r.resent {
			created++
		}
	}
	if len(ids) != 1 || created != 1 {
		t.Fatalf("%d concurrent starts made %d verifications (%d not resent), want 1", concurrency, len(ids), created)
	}
	for id := range ids {
		got := f.get(tenantA, id)
		if got.Sends != concurrency || len(got.Events) != concurrency {
			t.Errorf("sends %d, events %d; want %d each", got.Sends, len(got.Events), concurrency)
		}
	}
}

// testMessages: a relayed message (KindMessage) is always stored new, is
// never the number's pending verification (not resent, not checked by
// number or by id), keeps its kind and callback format, and ending it
// leaves the number's pending verification alone.
func testMessages(t *testing.T, f fixture) {
	to := Number(t)
	pending, _ := f.start(tenantA, to, "123456", T0)
	message := func(at time.Time) *verify.Verification {
		t.Helper()
		in := NewVerification(t, tenantA, to, at)
		in.Kind, in.CallbackFormat, in.MaxAttempts = verify.KindMessage, "twilio", 0
		v, resent, err := f.s.Start(f.ctx, Subject(in), in, "", at)
		if err != nil {
			t.Fatalf("Start(message): %v", err)
		}
		if resent || v.ID != in.ID || v.Sends != 1 || v.Kind != verify.KindMessage || len(v.CodeHashes) != 0 {
			t.Fatalf("Start(message) = %+v, resent %v: want a new message of its own without code hashes", v, resent)
		}
		return v
	}
	m1 := message(T0.Add(time.Second))
	m2 := message(T0.Add(2 * time.Second))
	if m1.ID == m2.ID {
		t.Fatal("two messages share an id")
	}
	got := f.get(tenantA, m1.ID)
	if got.Kind != verify.KindMessage || got.CallbackFormat != "twilio" || got.Status != verify.StatusPending {
		t.Errorf("Get(message) = kind %q format %q status %s, want message, twilio, pending", got.Kind, got.CallbackFormat, got.Status)
	}
	wantEvents(t, got, verify.EventCreated)
	if _, err := f.s.Check(f.ctx, verify.CheckQuery{Tenant: tenantA, ID: m1.ID, Hash: "", Now: T0.Add(3 * time.Second)}); !errors.Is(err, verify.ErrNotFound) {
		t.Errorf("Check(message by id) err = %v, want ErrNotFound", err)
	}
	if _, err := f.s.Transition(f.ctx, tenantA, m1.ID, verify.StatusCanceled, "", verify.Event{Type: verify.EventCanceled, At: T0.Add(4 * time.Second)}); !errors.Is(err, verify.ErrNotFound) {
		t.Errorf("a tenant's Transition of a message: err = %v, want ErrNotFound", err)
	}
	ended, err := f.s.Transition(f.ctx, "", m1.ID, verify.StatusDelivered, string(verify.EventDelivered),
		verify.Event{Type: verify.EventDelivered, At: T0.Add(4 * time.Second)})
	if err != nil || ended.Status != verify.StatusDelivered {
		t.Fatalf("Transition(message, delivered) = %v, %v", ended, err)
	}
	// The verification is still the number's pending one: a resend finds
	// it, and a check by number approves it.
	again, resent := f.start(tenantA, to, "654321", T0.Add(5*time.Second))
	if !resent || again.ID != pending.ID {
		t.Fatalf("start after messages: id %s resent %v, want the pending verification %s resent", again.ID, resent, pending.ID)
	}
	v := f.check(verify.CheckQuery{Tenant: tenantA, To: to, Hash: hash(tenantA, "123456"), Now: T0.Add(6 * time.Second)})
	if v.ID != pending.ID || v.Status != verify.StatusApproved {
		t.Errorf("check by number = %s %s, want %s approved", v.ID, v.Status, pending.ID)
	}
	if got := f.get(tenantA, m2.ID); got.Status != verify.StatusPending {
		t.Errorf("the other message is %s after the verification's approval, want pending", got.Status)
	}
}

// expirer is the store as a verify.Expirer, which every store is.
func (f fixture) expirer() verify.Expirer {
	f.t.Helper()
	x, ok := f.s.(verify.Expirer)
	if !ok {
		f.t.Fatalf("%T is not a verify.Expirer", f.s)
	}
	return x
}

func (f fixture) expire(now time.Time, limit int) ([]*verify.Verification, bool) {
	f.t.Helper()
	got, more, err := f.expirer().Expire(f.ctx, now, limit)
	if err != nil {
		f.t.Fatalf("Expire: %v", err)
	}
	return got, more
}

// testExpire: the sweep marks a verification nobody read after its
// lifetime expired, as a check would (event at its expiry, the number
// free for a new one), once; it leaves alone what has not expired, what
// has ended, and relayed messages; and it takes at most limit at a time.
func testExpire(t *testing.T, f fixture) {
	toA, toB, toC := Number(t), Number(t), Number(t)
	a, _ := f.start(tenantA, toA, "111111", T0)
	b, _ := f.start(tenantA, toB, "111111", T0.Add(time.Minute))
	c, _ := f.start(tenantA, toC, "111111", T0)
	f.check(verify.CheckQuery{Tenant: tenantA, ID: c.ID, Hash: hash(tenantA, "111111"), Now: T0.Add(time.Second)})
	msg := NewVerification(t, tenantA, toA, T0)
	msg.Kind, msg.MaxAttempts = verify.KindMessage, 0
	if _, _, err := f.s.Start(f.ctx, Subject(msg), msg, "", T0); err != nil {
		t.Fatalf("Start(message): %v", err)
	}

	if got, more := f.expire(T0.Add(lifetime-time.Microsecond), 10); len(got) != 0 || more {
		t.Fatalf("Expire before any lifetime ends = %d verifications, more %v; want none", len(got), more)
	}
	got, _ := f.expire(T0.Add(lifetime), 10)
	if len(got) != 1 || got[0].ID != a.ID {
		t.Fatalf("Expire at the first expiry = %v, want %s alone", ids(got), a.ID)
	}
	if got[0].Status != verify.StatusExpired {
		t.Errorf("returned status %s, want expired", got[0].Status)
	}
	stored := f.get(tenantA, a.ID)
	if stored.Status != verify.StatusExpired || !stored.UpdatedAt.Equal(T0.Add(lifetime)) {
		t.Errorf("stored: status %s updated %v, want expired at %v", stored.Status, stored.UpdatedAt, T0.Add(lifetime))
	}
	wantEvents(t, stored, verify.EventCreated, verify.EventExpired)
	if at := stored.Events[len(stored.Events)-1].At; !at.Equal(a.ExpiresAt) {
		t.Errorf("expired event at %v, want the expiry %v", at, a.ExpiresAt)
	}
	if got, _ := f.expire(T0.Add(lifetime), 10); len(got) != 0 {
		t.Errorf("a second sweep expired %v again", ids(got))
	}
	// The number is free: a new start makes a new verification.
	if n, resent := f.start(tenantA, toA, "222222", T0.Add(lifetime+time.Second)); resent || n.ID == a.ID {
		t.Errorf("start after the sweep: id %s resent %v, want a new verification", n.ID, resent)
	}
	if m := f.get(tenantA, msg.ID); m.Status != verify.StatusPending {
		t.Errorf("relayed message %s after the sweep, want pending", m.Status)
	}
	got, _ = f.expire(T0.Add(lifetime+2*time.Minute), 10) // b's lifetime ended, not the new one's
	if len(got) != 1 || got[0].ID != b.ID {
		t.Fatalf("Expire after every lifetime = %v, want %s alone (the approved one and the message stay)", ids(got), b.ID)
	}
	if v := f.get(tenantA, c.ID); v.Status != verify.StatusApproved {
		t.Errorf("approved verification is %s after the sweep", v.Status)
	}

	t.Run("limit", func(t *testing.T) {
		const n = 5
		want := map[string]bool{}
		for range n {
			v, _ := f.start(tenantB, Number(t), "111111", T0)
			want[v.ID] = true
		}
		now := T0.Add(lifetime)
		seen := map[string]bool{}
		for round := 0; ; round++ {
			got, more := f.expire(now, 2)
			if len(got) > 2 {
				t.Fatalf("limit 2 expired %d", len(got))
			}
			for _, v := range got {
				if !want[v.ID] || seen[v.ID] {
					t.Fatalf("Expire returned %s: not one of the verifications, or twice", v.ID)
				}
				seen[v.ID] = true
			}
			if !more {
				break
			}
			if round > n {
				t.Fatal("Expire keeps reporting more")
			}
		}
		if len(seen) != n {
			t.Errorf("expired %d of %d", len(seen), n)
		}
	})
}

func ids(vs []*verify.Verification) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.ID
	}
	return out
}

// testConcurrentExpire: sweeps racing over one store (gateways sharing
// one Redis) expire every due verification exactly once between them.
func testConcurrentExpire(t *testing.T, f fixture) {
	const n, sweepers = 30, 8
	want := map[string]bool{}
	for range n {
		v, _ := f.start(tenantA, Number(t), "111111", T0)
		want[v.ID] = true
	}
	x := f.expirer()
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range sweepers {
		wg.Go(func() {
			for {
				got, more, err := x.Expire(f.ctx, T0.Add(lifetime), 3)
				if err != nil {
					t.Errorf("Expire: %v", err)
					return
				}
				mu.Lock()
				for _, v := range got {
					seen[v.ID]++
				}
				mu.Unlock()
				if !more {
					return
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("expired %d distinct verifications, want %d", len(seen), n)
	}
	for id, c := range seen {
		if !want[id] || c != 1 {
			t.Errorf("%s expired %d times (one of ours: %v), want once", id, c, want[id])
		}
	}
}
