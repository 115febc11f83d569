package loadtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Client is a lean HTTP/1.1 client for load tests against a server on
// loopback. A benchmark's load generator shares the machine with the
// server it measures, so every microsecond it spends is taken from the
// server: Client keeps a fixed set of keep-alive connections, writes each
// request with one write from a reused buffer, and parses only the status
// line, Content-Length, Transfer-Encoding and Connection of the answer.
// net/http's client does much more per request (header maps, a
// goroutine per connection, body wrappers, connection-pool bookkeeping).
//
// It sends POST requests with a JSON body and the fixed headers given to
// NewClient. A connection that fails is closed and dialed again on its
// next use; the failed request is not retried (a POST may have been
// applied), its error goes to the caller.
type Client struct {
	addr   string
	header []byte // " HTTP/1.1\r\nHost: …\r\n<headers>\r\nContent-Length: "
	idle   chan *Conn
	n      int
}

// Timeout bounds one request, so that a server that stops answering
// ends the benchmark with an error instead of hanging it.
const Timeout = 30 * time.Second

// maxBody bounds a response body: larger is a broken answer, not one of
// the small JSON documents a load test reads.
const maxBody = 1 << 20

// NewClient returns a client with conns connections to addr, a
// host:port on a loopback address, that sends headers (complete header
// lines without CRLF, such as "Authorization: Bearer …") with every
// request besides Host, Content-Type: application/json and
// Content-Length. Connections are dialed on first use.
func NewClient(addr string, conns int, headers ...string) (*Client, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("loadtest: client address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("loadtest: client address %q: not a loopback IP", addr)
	}
	if conns < 1 {
		return nil, fmt.Errorf("loadtest: %d connections", conns)
	}
	h := []byte(" HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\n")
	for _, l := range headers {
		if strings.ContainsAny(l, "\r\n") || !strings.Contains(l, ":") {
			return nil, fmt.Errorf("loadtest: header line %q", l)
		}
		h = append(h, l+"\r\n"...)
	}
	h = append(h, "Content-Length: "...)
	c := &Client{addr: addr, header: h, idle: make(chan *Conn, conns), n: conns}
	for range conns {
		c.idle <- &Conn{c: c}
	}
	return c, nil
}

// Conn takes one of the client's connections, waiting until one is
// free. Give it back with Release.
func (c *Client) Conn() *Conn { return <-c.idle }

// Release gives cn back to its client.
func (c *Client) Release(cn *Conn) { c.idle <- cn }

// Close waits until every connection is released and closes them.
func (c *Client) Close() {
	for range c.n {
		(<-c.idle).close()
	}
}

// Conn is one keep-alive connection of a Client, used by one goroutine
// at a time.
type Conn struct {
	c    *Client
	nc   net.Conn
	br   *bufio.Reader
	req  []byte // request being written, reused
	body []byte // last response body, reused
}

// Post sends a POST of body to path and returns the status and the
// response body, which stays valid until the next Post on cn.
func (cn *Conn) Post(path, body string) (int, []byte, error) {
	return cn.do("POST ", path, body)
}

// Get sends a GET of path (with an empty body) and reads the answer, as
// Post does.
func (cn *Conn) Get(path string) (int, []byte, error) {
	return cn.do("GET ", path, "")
}

func (cn *Conn) do(method, path, body string) (int, []byte, error) {
	status, resp, err := cn.send(method, path, body)
	if err != nil {
		cn.close()
		return 0, nil, fmt.Errorf("loadtest: %s%s: %w", method, path, err)
	}
	return status, resp, nil
}

func (cn *Conn) send(method, path, body string) (int, []byte, error) {
	if cn.nc == nil {
		nc, err := net.DialTimeout("tcp", cn.c.addr, Timeout)
		if err != nil {
			return 0, nil, err
		}
		cn.nc = nc
		if cn.br == nil {
			cn.br = bufio.NewReaderSize(nc, 4096)
		} else {
			cn.br.Reset(nc)
		}
	}
	if err := cn.nc.SetDeadline(time.Now().Add(Timeout)); err != nil {
		return 0, nil, err
	}
	b := append(cn.req[:0], method...)
	b = append(b, path...)
	b = append(b, cn.c.header...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	cn.req = b
	if _, err := cn.nc.Write(b); err != nil {
		return 0, nil, err
	}
	return cn.readResponse()
}

// readResponse reads one response: status line, headers, and a body of
// Content-Length bytes, in chunks, or up to the end of the connection.
func (cn *Conn) readResponse() (int, []byte, error) {
	line, err := cn.line()
	if err != nil {
		return 0, nil, err
	}
	// "HTTP/1.1 201 Created"; the reason phrase may be empty.
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return 0, nil, fmt.Errorf("status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil || status < 100 {
		return 0, nil, fmt.Errorf("status line %q", line)
	}
	if status < 200 {
		// 1xx answers precede the real one; this client never asks for
		// them (no Expect: 100-continue), so one is a broken server.
		return 0, nil, fmt.Errorf("unexpected interim response %q", line)
	}
	keepAlive := line[7] == '1' // HTTP/1.1; HTTP/1.0 closes
	length, chunked := -1, false
	for {
		h, err := cn.line()
		if err != nil {
			return 0, nil, err
		}
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, nil, fmt.Errorf("header line %q", h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case equalFold(name, "Content-Length"):
			n, err := strconv.Atoi(string(value))
			if err != nil || n < 0 || (length >= 0 && n != length) {
				return 0, nil, fmt.Errorf("Content-Length %q", value)
			}
			length = n
		case equalFold(name, "Transfer-Encoding"):
			if !equalFold(value, "chunked") {
				return 0, nil, fmt.Errorf("Transfer-Encoding %q", value)
			}
			chunked = true
		case equalFold(name, "Connection"):
			if equalFold(value, "close") {
				keepAlive = false
			}
		}
	}
	body := cn.body[:0]
	switch {
	case status == 204 || status == 304:
	case chunked:
		if body, err = cn.readChunked(body); err != nil {
			return 0, nil, err
		}
	case length > maxBody:
		return 0, nil, fmt.Errorf("Content-Length %d", length)
	case length >= 0:
		body = grow(body, length)
		if _, err := io.ReadFull(cn.br, body); err != nil {
			return 0, nil, fmt.Errorf("body: %w", err)
		}
	default: // the body ends with the connection
		keepAlive = false
		if body, err = readAll(cn.br, body); err != nil {
			return 0, nil, err
		}
	}
	cn.body = body
	if !keepAlive {
		cn.close()
	}
	return status, body, nil
}

// readChunked appends a chunked body to b: chunks of "<hex size>[;ext]"
// lines and data, ended by a zero-size chunk and (ignored) trailers.
func (cn *Conn) readChunked(b []byte) ([]byte, error) {
	for {
		line, err := cn.line()
		if err != nil {
			return nil, err
		}
		hex, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseUint(string(bytes.TrimSpace(hex)), 16, 32)
		if err != nil || len(b)+int(n) > maxBody {
			return nil, fmt.Errorf("chunk size line %q", line)
		}
		if n == 0 {
			for { // trailers up to the empty line
				t, err := cn.line()
				if err != nil {
					return nil, err
				}
				if len(t) == 0 {
					return b, nil
				}
			}
		}
		b = grow(b, len(b)+int(n))
		if _, err := io.ReadFull(cn.br, b[len(b)-int(n):]); err != nil {
			return nil, fmt.Errorf("chunk: %w", err)
		}
		if end, err := cn.line(); err != nil || len(end) != 0 {
			return nil, fmt.Errorf("chunk not followed by CRLF: %q %v", end, err)
		}
	}
}

// line reads one CRLF-ended line without its CRLF. The slice is valid
// until the next read.
func (cn *Conn) line() ([]byte, error) {
	l, err := cn.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("line longer than %d bytes", cn.br.Size())
		}
		return nil, err
	}
	if len(l) < 2 || l[len(l)-2] != '\r' {
		return nil, fmt.Errorf("line %q not ended by CRLF", l)
	}
	return l[:len(l)-2], nil
}

func (cn *Conn) close() {
	if cn.nc != nil {
		_ = cn.nc.Close()
		cn.nc = nil
	}
}

// grow returns b resized to n, reusing its array when it is large enough.
func grow(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	return append(b[:cap(b)], make([]byte, n-cap(b))...)
}

func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) > maxBody {
			return nil, fmt.Errorf("body over %d bytes", maxBody)
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
	}
}

// equalFold is bytes.EqualFold for ASCII header names and tokens,
// without converting s.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c, d := b[i]|0x20, s[i]|0x20 // lower case letters; other bytes compared below
		if c != d || (b[i] != s[i] && (c < 'a' || c > 'z')) {
			return false
		}
	}
	return true
}
