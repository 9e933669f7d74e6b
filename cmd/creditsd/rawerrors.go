package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/creditsd/creditsd/entitlements"
)

// net/http answers a request it cannot parse itself, before any handler
// runs, and in text/plain: 400 for a malformed request line, header or Host,
// 431 for headers over maxHeaderBytes, 501 for a Transfer-Encoding it does
// not know and 505 for an HTTP version it does not speak. The contract wants
// every error in problem+json with a code, and a client's mistake is never a
// 5xx, so the server's listener rewrites those replies on their way out.
// net/http writes each in one Write, as "HTTP/1.1 " + status +
// plainErrorHeaders + text, then closes the connection (conn.serve in
// net/http/server.go). A handler's answer does not match: net/http writes
// a Date header after the handler's own headers and before those it adds
// (no creditsd handler suppresses it), so these never follow its status
// line directly.
const plainErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// problemListener hands out connections whose writes pass through
// problemReply.
type problemListener struct{ net.Listener }

func (l problemListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return problemConn{c}, nil
}

type problemConn struct{ net.Conn }

func (c problemConn) Write(b []byte) (int, error) {
	reply, ok := problemReply(b)
	if !ok {
		return c.Conn.Write(b)
	}
	if _, err := c.Conn.Write(reply); err != nil {
		return 0, err
	}
	return len(b), nil
}

// CloseWrite keeps the TCP half-close net/http uses after a 431, so that
// the client reads the answer before the connection resets.
func (c problemConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// problemReply is net/http's own reply to a request it could not parse,
// rewritten as problem+json; ok is false for every other write, a
// handler's text/plain 4xx included (see plainErrorHeaders).
func problemReply(b []byte) (reply []byte, ok bool) {
	const proto = "HTTP/1.1 "
	if len(b) < len(proto)+3 || (b[len(proto)] != '4' && b[len(proto)] != '5') || !bytes.HasPrefix(b, []byte(proto)) {
		return nil, false // the hot path: every answer a handler gives that is not an error
	}
	statusLine, text, found := bytes.Cut(b[len(proto):], []byte(plainErrorHeaders))
	if !found || len(statusLine) < 3 || bytes.ContainsAny(statusLine, "\r\n") {
		return nil, false // not these headers right after the status line
	}
	code, err := strconv.Atoi(string(statusLine[:3]))
	if err != nil {
		return nil, false
	}
	p := parseFailure(code, string(text))
	body, err := json.Marshal(p)
	if err != nil {
		return nil, false
	}
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/problem+json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		p.Status, p.Title, len(body), body), true
}

// parseFailure is the problem for net/http's reply with status code and
// text ("400 Bad Request: missing required Host header", …).
func parseFailure(code int, text string) entitlements.Problem {
	switch code {
	case http.StatusRequestHeaderFieldsTooLarge:
		return entitlements.Problem{Type: "urn:creditsd:problem:headers_too_large", Title: http.StatusText(code),
			Status: code, Detail: fmt.Sprintf("the request's headers are over %d KiB", maxHeaderBytes>>10), Code: "headers_too_large"}
	case http.StatusNotImplemented: // a Transfer-Encoding net/http does not know: the client's mistake, so a 4xx
		return entitlements.Problem{Type: "urn:creditsd:problem:unsupported_transfer_encoding",
			Title: http.StatusText(http.StatusBadRequest), Status: http.StatusBadRequest,
			Detail: "the request's Transfer-Encoding is not supported: send chunked or a Content-Length",
			Code:   "unsupported_transfer_encoding"}
	}
	p := entitlements.Problem{Type: "urn:creditsd:problem:malformed_request", Title: http.StatusText(http.StatusBadRequest),
		Status: http.StatusBadRequest, Detail: "the request is not valid HTTP/1.1", Code: "malformed_request"}
	if reason, ok := strings.CutPrefix(text, fmt.Sprintf("%d %s: ", code, http.StatusText(code))); ok && reason != "" {
		p.Detail = reason // net/http's own words: "missing required Host header"
	}
	return p
}
