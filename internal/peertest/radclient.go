package peertest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// RADIUS reply codes as radclient names them, and NoReply for a request
// that got none after all its attempts.
const (
	AccessAccept    = "Access-Accept"
	AccessReject    = "Access-Reject"
	AccessChallenge = "Access-Challenge"
	NoReply         = "no reply"
)

// RADIUSAttr is one attribute: its FreeRADIUS dictionary name and value
// (text; octets as 0x<hex>; enumerations by name).
type RADIUSAttr struct {
	Name, Value string
}

// RadclientRequest is what Radclient sends.
type RadclientRequest struct {
	// Addr is the server's host:port.
	Addr string
	// Secret is the shared secret; DefaultRADIUSSecret if empty.
	Secret string
	// Command is radclient's packet type; "auth" (Access-Request) if
	// empty, "status" for Status-Server.
	Command string
	// Attrs are the attributes of one request, in order.
	Attrs []RADIUSAttr
	// Packets, instead of Attrs, are several requests (radclient reads
	// them as a file of packets), sent Parallel at a time: a burst.
	Packets [][]RADIUSAttr
	// NoMessageAuthenticator leaves out the Message-Authenticator that is
	// otherwise added to every request (as 0x00, which radclient replaces
	// with the HMAC it computes).
	NoMessageAuthenticator bool
	// Timeout is how long radclient waits for a reply before it sends the
	// request again (-t); 10 s if zero. Use whole seconds: radclient
	// 3.2 waits in steps of about a second.
	Timeout time.Duration
	// Retries is how many times each request is sent at most, the first
	// time included (-r), with the same identifier and authenticator: a
	// NAS retransmitting. 1 if zero.
	Retries int
	// Count sends each request this many times (-c), each time as a new
	// request; 1 if zero.
	Count int
	// Parallel is how many requests are in flight at once (-p); 1 if zero.
	Parallel int
}

// RadclientReply is one reply radclient received.
type RadclientReply struct {
	// Code is AccessAccept, AccessReject or AccessChallenge ("" in the
	// zero reply, when none came).
	Code string
	// Attrs are the reply's attributes as radclient printed them: text
	// unquoted, octets (State, Message-Authenticator) as 0x<hex>.
	Attrs []RADIUSAttr
}

// Get returns the first value of the attribute name.
func (r RadclientReply) Get(name string) (string, bool) {
	for _, a := range r.Attrs {
		if a.Name == name {
			return a.Value, true
		}
	}
	return "", false
}

// HasMessageAuthenticator reports whether the reply carried a
// Message-Authenticator. radclient drops a reply whose
// Message-Authenticator is wrong, so a present one is a valid one.
func (r RadclientReply) HasMessageAuthenticator() bool {
	_, ok := r.Get("Message-Authenticator")
	return ok
}

// RadclientResult is what radclient saw.
type RadclientResult struct {
	// Replies are the replies in the order they arrived.
	Replies []RadclientReply
	// Sent counts the packets sent, retransmissions included.
	Sent int
	// Lost counts the requests that got no reply after all attempts.
	Lost int
	// Stdout and Stderr are radclient's output (-x: every packet).
	Stdout, Stderr string
}

// Reply returns the first reply, or the zero reply when none came.
func (r *RadclientResult) Reply() RadclientReply {
	if len(r.Replies) == 0 {
		return RadclientReply{}
	}
	return r.Replies[0]
}

// Code returns the first reply's code, NoReply when none came.
func (r *RadclientResult) Code() string {
	if len(r.Replies) == 0 {
		return NoReply
	}
	return r.Replies[0].Code
}

// Counts returns how many requests ended with each code, NoReply
// included when some did.
func (r *RadclientResult) Counts() map[string]int {
	c := map[string]int{}
	for _, rep := range r.Replies {
		c[rep.Code]++
	}
	if r.Lost > 0 {
		c[NoReply] = r.Lost
	}
	return c
}

// String is a summary for test messages.
func (r *RadclientResult) String() string {
	return fmt.Sprintf("radclient: sent %d, replies %v\nstdout:\n%s\nstderr:\n%s", r.Sent, r.Counts(), r.Stdout, r.Stderr)
}

// Radclient runs Debian's radclient (package freeradius-utils) once with
// req and parses what it printed (-x) into replies. A reject or a missing
// reply is a result, not an error; the error is for radclient failing to
// run or to send anything (a bad attribute name, say), or ctx ending.
func Radclient(ctx context.Context, req RadclientRequest) (*RadclientResult, error) {
	bin, err := exec.LookPath("radclient")
	if err != nil {
		return nil, fmt.Errorf("peertest: radclient not found (%w): install the Debian package \"freeradius-utils\" (scripts/test.sh does so with apt-get)", err)
	}
	packets := req.Packets
	switch {
	case len(req.Attrs) > 0 && len(packets) > 0:
		return nil, errors.New("peertest: radclient: Attrs or Packets, not both")
	case len(packets) == 0:
		packets = [][]RADIUSAttr{req.Attrs}
	}
	var in bytes.Buffer
	for i, p := range packets {
		if i > 0 {
			in.WriteString("\n") // an empty line ends a packet
		}
		for _, a := range p {
			if !radiusAttrName.MatchString(a.Name) {
				return nil, fmt.Errorf("peertest: radclient: attribute name %q", a.Name)
			}
			fmt.Fprintf(&in, "%s = %s\n", a.Name, quoteRADIUS(a.Value))
		}
		if !req.NoMessageAuthenticator {
			in.WriteString("Message-Authenticator = 0x00\n")
		}
	}
	secret, command := req.Secret, req.Command
	if secret == "" {
		secret = DefaultRADIUSSecret
	}
	if command == "" {
		command = "auth"
	}
	timeout := req.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	args := []string{"-x", "-s",
		"-t", strconv.FormatFloat(timeout.Seconds(), 'f', -1, 64),
		"-r", strconv.Itoa(max(req.Retries, 1)),
		"-c", strconv.Itoa(max(req.Count, 1)),
		"-p", strconv.Itoa(max(req.Parallel, 1)),
		req.Addr, command, secret}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 2 * time.Second
	cmd.Stdin = &in
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	res := parseRadclient(stdout.String(), stderr.String())
	if ctx.Err() != nil {
		return res, fmt.Errorf("peertest: radclient: %w\n%s", ctx.Err(), res)
	}
	var exit *exec.ExitError
	if runErr != nil && !errors.As(runErr, &exit) {
		return res, fmt.Errorf("peertest: radclient: %w", runErr)
	}
	// radclient exits 1 on a reject or a lost request too; it is an
	// error only when nothing went out.
	if res.Sent == 0 {
		return res, fmt.Errorf("peertest: radclient sent nothing (%v)\n%s", runErr, res)
	}
	return res, nil
}

var (
	radiusAttrName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9\-_.:]*$`)
	// Received Access-Accept Id 114 from 127.0.0.1:18120 to 127.0.0.1:48844 length 51
	radclientReceived = regexp.MustCompile(`^Received (\S+) Id \d+ `)
	radclientSent     = regexp.MustCompile(`^Sent \S+ Id \d+ `)
	radclientAttr     = regexp.MustCompile(`^\t([A-Za-z0-9\-_.:]+) :?= (.*)$`)
	radclientLost     = regexp.MustCompile(`(?m)^\s*Lost\s*:\s*(\d+)\s*$`)
	radclientNoReply  = regexp.MustCompile(`(?m)No reply from server for ID`)
)

// parseRadclient reads radclient -x -s output: "Sent …" and "Received …"
// lines, each followed by its attributes indented with a tab, then the
// summary (-s) whose Lost line counts requests without a reply. Messages
// about lost requests go to stderr, which is read apart because stdout is
// buffered and the two would interleave mid-line.
func parseRadclient(stdout, stderr string) *RadclientResult {
	res := &RadclientResult{Stdout: stdout, Stderr: stderr}
	var cur *RadclientReply
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := radclientAttr.FindStringSubmatch(line); m != nil {
			if cur != nil {
				cur.Attrs = append(cur.Attrs, RADIUSAttr{Name: m[1], Value: unquoteRADIUS(m[2])})
			}
			continue
		}
		if cur != nil {
			res.Replies = append(res.Replies, *cur)
			cur = nil
		}
		if m := radclientReceived.FindStringSubmatch(line); m != nil {
			cur = &RadclientReply{Code: m[1]}
		} else if radclientSent.MatchString(line) {
			res.Sent++
		}
	}
	if cur != nil {
		res.Replies = append(res.Replies, *cur)
	}
	if m := radclientLost.FindStringSubmatch(stdout); m != nil {
		res.Lost, _ = strconv.Atoi(m[1])
	} else {
		res.Lost = len(radclientNoReply.FindAllStringIndex(stderr, -1))
	}
	return res
}

// unquoteRADIUS undoes FreeRADIUS's printing of a string value; anything
// else (numbers, names, 0x octets) is returned as it is.
func unquoteRADIUS(v string) string {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return v
	}
	if s, err := strconv.Unquote(v); err == nil {
		return s
	}
	return v[1 : len(v)-1]
}
