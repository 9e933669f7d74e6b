package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// wireClient speaks just enough HTTP/1.1 to drive creditsd, over one kept
// alive connection per worker. The load tool shares the server's two cores,
// so every microsecond it spends is one the server does not get: with Go's
// net/http client the whole tool spent ~48 µs of CPU per entitlement read
// (0.43 cores at 9,000/s, 1M users), with this ~29 µs (0.29 cores at
// 10,000/s), and the same server answered 10–15 % more reads. It writes
// each request in one call and reads the answer's status, headers and
// body (Content-Length or chunked), nothing more: no redirects, no
// compression, no proxies.
type wireClient struct {
	addr    string // host:port
	host    string // the Host header
	prefix  string // the base URL's path, before every request's
	tls     *tls.Config
	timeout time.Duration // the longest one request may take
	idle    chan *wireConn
}

type wireConn struct {
	net.Conn
	r   *bufio.Reader
	buf []byte // the request being written
}

// newWireClient reaches base (http://host:port or https://host:port) and
// keeps up to idle connections open between requests.
func newWireClient(base string, idle int) (*wireClient, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	c := &wireClient{addr: u.Host, host: u.Host, prefix: strings.TrimSuffix(u.Path, "/"), timeout: 60 * time.Second,
		idle: make(chan *wireConn, idle)}
	port := map[string]string{"http": "80", "https": "443"}[u.Scheme]
	if port == "" {
		return nil, fmt.Errorf("%s: want an http:// or https:// URL", base)
	}
	if u.Scheme == "https" {
		c.tls = &tls.Config{ServerName: u.Hostname()}
	}
	if u.Port() == "" {
		c.addr = net.JoinHostPort(u.Hostname(), port)
	}
	return c, nil
}

// send makes one request and reads its answer to the end, which is what
// lets the connection be reused. It returns the status (0 with an error
// when no answer came). A request the context's deadline cuts short fails
// with errCutShort.
func send(ctx context.Context, c *wireClient, method, path, bearer string, body []byte) (int, error) {
	for {
		conn, reused, err := c.conn(ctx)
		if err != nil {
			return 0, cutShort(ctx, err)
		}
		status, err := c.roundTrip(ctx, conn, method, path, bearer, body)
		// A kept connection the server has closed meanwhile (its idle
		// timeout, a proxy's) fails before any answer: send again on a
		// new one, as net/http does. Every request the tool sends is
		// idempotent (spend keys, notification UUIDs), so a repeat is safe.
		if reused && status == 0 && isClosedConn(err) && ctx.Err() == nil {
			continue
		}
		return status, err
	}
}

// roundTrip sends one request on conn and keeps conn for the next one
// when the answer allows it.
func (c *wireClient) roundTrip(ctx context.Context, conn *wireConn, method, path, bearer string, body []byte) (int, error) {
	// The request as a whole gets c.timeout; the context ends it sooner
	// through AfterFunc, so that a request the run's deadline stops fails
	// with the context's error and not with a socket timeout that raced it.
	_ = conn.SetDeadline(time.Now().Add(c.timeout))
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	status, keep, err := conn.roundTrip(c.host, method, c.prefix+path, bearer, body)
	stop()
	if err != nil || !keep || ctx.Err() != nil {
		conn.Close()
		return status, cutShort(ctx, err)
	}
	select {
	case c.idle <- conn:
	default:
		conn.Close()
	}
	return status, nil
}

// isClosedConn reports the errors of a connection the other side closed.
func isClosedConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

// errCutShort is a request the run's deadline (or its cancellation) ended:
// it measures the deadline, not the server, and the load does not count it.
var errCutShort = errors.New("cut short by the run's end")

// cutShort is err, or errCutShort when the context is done or its deadline
// has passed (its timer may not have fired yet).
func cutShort(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if d, ok := ctx.Deadline(); ctx.Err() != nil || ok && !time.Now().Before(d) {
		return fmt.Errorf("%w: %w", errCutShort, err)
	}
	return err
}

// conn is an idle connection (reused), or a new one.
func (c *wireClient) conn(ctx context.Context) (conn *wireConn, reused bool, err error) {
	select {
	case conn := <-c.idle:
		return conn, true, nil
	default:
	}
	d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, false, err
	}
	if c.tls != nil {
		tc := tls.Client(nc, c.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, false, err
		}
		nc = tc
	}
	return &wireConn{Conn: nc, r: bufio.NewReaderSize(nc, 16<<10)}, false, nil
}

// CloseIdleConnections closes the kept connections (after the server they
// lead to has stopped).
func (c *wireClient) CloseIdleConnections() {
	for {
		select {
		case conn := <-c.idle:
			conn.Close()
		default:
			return
		}
	}
}

func (w *wireConn) roundTrip(host, method, path, bearer string, body []byte) (status int, keep bool, err error) {
	b := w.buf[:0]
	b = append(append(append(append(b, method...), ' '), path...), " HTTP/1.1\r\nHost: "...)
	b = append(append(b, host...), "\r\n"...)
	if bearer != "" {
		b = append(append(append(b, "Authorization: Bearer "...), bearer...), "\r\n"...)
	}
	if body != nil {
		b = append(b, "Content-Type: application/json\r\nContent-Length: "...)
		b = append(strconv.AppendInt(b, int64(len(body)), 10), "\r\n"...)
	}
	b = append(append(b, "\r\n"...), body...)
	w.buf = b
	if _, err := w.Write(b); err != nil {
		return 0, false, err
	}
	return readResponse(w.r)
}

var errMalformed = errors.New("malformed HTTP response")

// readResponse reads one response, discarding its body, and says whether
// the connection may carry another request.
func readResponse(r *bufio.Reader) (status int, keep bool, err error) {
	line, err := readLine(r)
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	keep = line[7] == '1'
	length, chunked := int64(-1), false
	for {
		h, err := readLine(r)
		if err != nil {
			return status, false, err
		}
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return status, false, fmt.Errorf("%w: header %q", errMalformed, h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return status, false, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			keep = keep && !bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case status < 200 || status == http.StatusNoContent || status == http.StatusNotModified:
		// no body, whatever the headers say (RFC 9112 §6.3); an informational answer is not the final one, but creditsd sends none
	case chunked:
		err = discardChunked(r)
	case length >= 0:
		_, err = r.Discard(int(length))
	default: // the body runs to the end of the connection
		_, err = io.Copy(io.Discard, r)
		keep = false
	}
	return status, keep && err == nil, err
}

// discardChunked reads a chunked body and its trailers.
func discardChunked(r *bufio.Reader) error {
	for {
		line, err := readLine(r)
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		if n == 0 {
			for { // trailers, up to the blank line
				t, err := readLine(r)
				if err != nil || len(t) == 0 {
					return err
				}
			}
		}
		if _, err := r.Discard(int(n)); err != nil {
			return err
		}
		crlf, err := readLine(r)
		if err != nil {
			return err
		}
		if len(crlf) != 0 {
			return fmt.Errorf("%w: no CRLF after a chunk", errMalformed)
		}
	}
}

// readLine is one CRLF-terminated line without its ending, valid until the
// next read.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: line longer than %d bytes", errMalformed, r.Size())
		}
		return nil, err
	}
	return bytes.TrimSuffix(line[:len(line)-1], []byte("\r")), nil
}
