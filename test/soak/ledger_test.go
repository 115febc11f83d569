package soak

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// pool is what the numbers of one group are used for. Pools never share a
// number, so what a number received tells how it may have been approved.
type pool int

const (
	poolSMS    pool = iota // SMS; checked with the code the fake delivered, and with wrong ones
	poolCode               // code-mode calls; checked with the code the fake heard, and with wrong ones
	poolPress              // approve-mode calls; the phone presses '#'
	poolSilent             // approve-mode calls held ringing, then silent: only a forgery could approve them
	poolProbe              // SMS to see Redis serve again after the restart
	poolFraud              // approve-mode calls answered 0#: blocked until Redis forgets it
)

func (p pool) String() string {
	return [...]string{"sms", "call_code", "call_press", "call_silent", "probe", "call_fraud"}[p]
}

// channel is the channel the pool's starts ask for.
func (p pool) channel() string {
	if p == poolCode || p == poolPress || p == poolSilent || p == poolFraud {
		return "call"
	}
	return "sms"
}

// number is one phone number of the soak.
type number struct {
	e164 string
	pool pool
}

// verification is what the soak knows of one verification it started.
type verification struct {
	id  string
	num number
}

// checkTry is one check the soak sent: by id or by number, with the code
// it read from the fake or one the fake never delivered.
type checkTry struct {
	id     string // "" for a check by number
	num    number
	code   string
	status int    // HTTP status; 0 when no answer came
	result string // the verification's status in a 200 answer
}

// approval is a check answered "approved".
type approval struct {
	id   string
	num  number
	code string
	kind string
}

// ledger is everything the workers saw, for the assertions and the report.
type ledger struct {
	mu sync.Mutex

	// requests by kind and HTTP status (0: no answer)
	requests map[string]map[int]int
	// unexpected answers, by kind: count and the first examples
	unexpected     map[string]int
	unexpectedSeen []string
	// violations of what must hold whatever the load
	violations []string
	// 503 answers while Redis was up (fail closed under a stall: reported)
	unavailableUp int

	verifications map[string]*verification
	lastID        map[string]string // number → id of its latest start answered 2xx
	checks        []*checkTry
	approvals     []approval
	failedChecks  map[string]int // number → checks that counted as failed (200 pending or max_attempts_reached)
	// seenApproved: verifications a GET showed approved (a Redis restart
	// forgets those before it, so they are judged from what was seen)
	seenApproved map[string]bool
	canceled     map[string]bool // verifications a cancel answered canceled

	idemPairs, idemReplayed int
}

func newLedger() *ledger {
	return &ledger{
		requests:      map[string]map[int]int{},
		unexpected:    map[string]int{},
		verifications: map[string]*verification{},
		lastID:        map[string]string{},
		failedChecks:  map[string]int{},
		seenApproved:  map[string]bool{},
		canceled:      map[string]bool{},
	}
}

func (l *ledger) count(kind string, status int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.requests[kind]
	if m == nil {
		m = map[int]int{}
		l.requests[kind] = m
	}
	m[status]++
}

// total is how many requests of kind were sent; l.mu is held.
func (l *ledger) total(kind string) int {
	n := 0
	for _, c := range l.requests[kind] {
		n += c
	}
	return n
}

// surprise records an answer outside what a request kind may get.
func (l *ledger) surprise(kind string, status int, detail string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unexpected[kind]++
	if len(l.unexpectedSeen) < 30 {
		l.unexpectedSeen = append(l.unexpectedSeen, fmt.Sprintf("%s: HTTP %d: %s", kind, status, detail))
	}
}

// violate records a broken invariant.
func (l *ledger) violate(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.violations) < 50 {
		l.violations = append(l.violations, fmt.Sprintf(format, args...))
	}
}

func (l *ledger) started(id string, n number) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if id == "" {
		return
	}
	if v, ok := l.verifications[id]; ok && v.num != n {
		l.violations = append(l.violations, fmt.Sprintf("verification %s answered for %s and for %s", id, v.num.e164, n.e164))
	}
	l.verifications[id] = &verification{id: id, num: n}
	l.lastID[n.e164] = id
}

func (l *ledger) latest(n number) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastID[n.e164]
}

func (l *ledger) verification(id string) (verification, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.verifications[id]
	if !ok {
		return verification{}, false
	}
	return *v, true
}

// someID is a verification of the pools given, chosen by pick (an index
// below its argument), or "" when there is none yet.
func (l *ledger) someID(pick func(int) int, pools ...pool) (verification, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []string
	for _, id := range l.lastID {
		if v := l.verifications[id]; v != nil {
			for _, p := range pools {
				if v.num.pool == p {
					ids = append(ids, id)
				}
			}
		}
	}
	if len(ids) == 0 {
		return verification{}, false
	}
	sort.Strings(ids) // map order is random; pick decides
	return *l.verifications[ids[pick(len(ids))]], true
}

func (l *ledger) checked(c *checkTry, kind string, respID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.checks = append(l.checks, c)
	if c.status != 200 {
		return
	}
	switch c.result {
	case "approved":
		l.approvals = append(l.approvals, approval{id: respID, num: c.num, code: c.code, kind: kind})
	case "pending", "max_attempts_reached":
		l.failedChecks[c.num.e164]++
	}
}

func (l *ledger) sawApproved(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seenApproved[id] = true
}

func (l *ledger) canceledID(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.canceled[id] = true
}

func (l *ledger) wasCanceled(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.canceled[id]
}

func (l *ledger) idempotent(replayed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.idemPairs++
	if replayed {
		l.idemReplayed++
	}
}

func (l *ledger) unavailableWhileUp() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unavailableUp++
}

// report is the table of requests by kind and status.
func (l *ledger) report() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	kinds := make([]string, 0, len(l.requests))
	total := 0
	for k, m := range l.requests {
		kinds = append(kinds, k)
		for _, n := range m {
			total += n
		}
	}
	sort.Strings(kinds)
	var b strings.Builder
	fmt.Fprintf(&b, "requests: %d\n", total)
	for _, k := range kinds {
		m := l.requests[k]
		statuses := make([]int, 0, len(m))
		n := 0
		for s, c := range m {
			statuses = append(statuses, s)
			n += c
		}
		sort.Ints(statuses)
		parts := make([]string, 0, len(statuses))
		for _, s := range statuses {
			label := fmt.Sprint(s)
			if s == 0 {
				label = "no-answer"
			}
			parts = append(parts, fmt.Sprintf("%s×%d", label, m[s]))
		}
		fmt.Fprintf(&b, "  %-28s %6d  %s\n", k, n, strings.Join(parts, " "))
	}
	return b.String()
}

// windows is how many windows of length w a span of length d can touch,
// plus one for each time the limiter's state was lost (a Redis restart
// without persistence): a sliding-window limit of n per w lets at most
// n × windows(d, w, restarts) through in d.
func windows(d, w time.Duration, restarts int) int {
	return int(d/w) + 1 + restarts
}
