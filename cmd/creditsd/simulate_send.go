package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/creditsd/creditsd/receipts/devca/simulator"
)

// webhookTimeout bounds one delivery; the webhook answers in milliseconds.
const webhookTimeout = 10 * time.Second

// deliver sends each event to the webhook as Apple would and prints one
// line per event: what was signed, then the server's status and outcome.
// With --print it prints the signed notifications instead (stdout, one
// JWS a line, for pipes) and the lines to stderr.
func (o *simulateOptions) deliver(ctx context.Context, events []simulator.Event, stdout, stderr io.Writer) error {
	for _, ev := range events {
		line := describe(ev)
		if o.print {
			fmt.Fprintln(stdout, ev.SignedPayload)
			fmt.Fprintln(stderr, line)
			continue
		}
		ans, err := postNotification(ctx, o.server, ev.SignedPayload)
		if err != nil {
			return fmt.Errorf("simulate: %w (is `creditsd serve` running there? --server names another)", err)
		}
		fmt.Fprintln(stdout, line, ans)
		if ans.Status/100 != 2 {
			return fmt.Errorf("simulate: the server refused %s: %d %s: %s", ev.Type, ans.Status, ans.Code, ans.Detail)
		}
	}
	return nil
}

// describe is an event as one stable line of key=value fields, e.g.
// "ONE_TIME_CHARGE transaction=2000000000000001 product=… user=alice
// notification=<uuid>".
func describe(ev simulator.Event) string {
	name := ev.Type
	if ev.Subtype != "" {
		name += "/" + ev.Subtype
	}
	f := []string{name}
	if rec := ev.Transaction; rec != nil {
		p := rec.Payload
		f = append(f, "transaction="+p.TransactionID, "product="+p.ProductID)
		if p.Quantity > 1 {
			f = append(f, fmt.Sprintf("quantity=%d", p.Quantity))
		}
		if rec.User != "" {
			f = append(f, "user="+rec.User)
		}
		if p.ExpiresDate != 0 {
			f = append(f, "expires="+time.UnixMilli(p.ExpiresDate).UTC().Format(time.RFC3339))
		}
		if p.RevocationType == "REFUND_PRORATED" {
			f = append(f, fmt.Sprintf("refund=%g%%", float64(p.RevocationPercentage)/1000))
		}
	} else {
		f = append(f, "environment="+ev.Environment)
	}
	return strings.Join(append(f, "notification="+ev.NotificationUUID), " ")
}

// webhookAnswer is the webhook's answer: a result, or a problem.
type webhookAnswer struct {
	Status    int    `json:"-"`
	Outcome   string `json:"outcome"`
	Duplicate bool   `json:"duplicate"`
	Code      string `json:"code"`
	Detail    string `json:"detail"`
}

// String is the answer's part of the printed line.
func (a webhookAnswer) String() string {
	s := fmt.Sprintf("status=%d", a.Status)
	switch {
	case a.Code != "":
		s += " code=" + a.Code
	case a.Outcome != "":
		s += " outcome=" + a.Outcome
	}
	if a.Duplicate {
		s += " duplicate=true"
	}
	return s
}

// postNotification posts {"signedPayload": …} to server's webhook.
func postNotification(ctx context.Context, server, signedPayload string) (webhookAnswer, error) {
	ctx, cancel := context.WithTimeout(ctx, webhookTimeout)
	defer cancel()
	body, _ := json.Marshal(map[string]string{"signedPayload": signedPayload}) // a map of strings always encodes
	url := server + "/v1/appstore/notifications"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return webhookAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "creditsd-simulator/"+version)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return webhookAnswer{}, err
	}
	defer resp.Body.Close()
	ans := webhookAnswer{Status: resp.StatusCode}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return webhookAnswer{}, fmt.Errorf("POST %s: %w", url, err)
	}
	if json.Unmarshal(raw, &ans) != nil && ans.Status/100 != 2 {
		ans.Detail = strings.TrimSpace(string(raw)) // not a problem+json: show what came
	}
	return ans, nil
}
