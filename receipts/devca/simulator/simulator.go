// Package simulator is a local App Store. It sells, refunds, renews and
// expires purchases the way Apple does, and signs what says so — the
// transaction (JWSTransaction) and the App Store Server Notification V2
// around it — with a development CA (package devca), so that a server
// trusting that CA cannot tell it from Apple's.
//
// It does no I/O: the caller keeps its State (creditsd keeps it in a JSON
// file beside the CA) and delivers the notifications. What it sold stays in
// the State, so that a later refund or renewal re-signs the transaction
// Apple would re-sign, with a newer signedDate.
package simulator

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/creditsd/creditsd/receipts/devca"
)

// Record is one transaction the simulator sold: its newest payload, and the
// user it was sold to (for what the simulator prints; Apple only knows the
// appAccountToken).
type Record struct {
	User    string                   `json:"user,omitempty"`
	Payload devca.TransactionPayload `json:"payload"`
}

// State is what the simulator remembers between runs.
type State struct {
	// Sold counts the transactions sold; it numbers the next one, so ids are
	// stable from a fresh state (2000000000000001, …), which docs rely on.
	Sold int64 `json:"sold"`
	// LastSigned is the newest signedDate (ms) issued. Every signature is
	// later, because the server keeps a transaction's newest version only.
	LastSigned   int64              `json:"last_signed"`
	Transactions map[string]*Record `json:"transactions"`
}

// Simulator signs what a local App Store would send. BundleID and
// AppAppleID are used for new sales and TEST notifications; later events
// reuse the transaction's own bundle id and environment, so that the
// envelope always agrees with what it carries.
type Simulator struct {
	CA         *devca.CA
	BundleID   string
	AppAppleID int64 // set on every notification; Production requires it
	State      *State
	Now        func() time.Time // default time.Now
	NewUUID    func() string    // default a random UUID v4
}

// Event is one signed notification and what it carries.
type Event struct {
	Type, Subtype     string
	NotificationUUID  string
	Environment       string
	Transaction       *Record // as signed; nil for TEST
	SignedTransaction string  // the transaction's JWS, what the app would POST
	SignedPayload     string  // the notification's JWS, what Apple's webhook POSTs
}

// notice is what sign needs to build one notification.
type notice struct {
	typ, subtype string
	env          string
	rec          *Record
	renewal      *devca.RenewalPayload
	reason       string // consumptionRequestReason
}

// sign stamps n with a fresh signedDate and signs the transaction, the
// renewal info and the notification around them.
func (s *Simulator) sign(n notice) (Event, error) {
	stamp := s.stamp()
	ev := Event{Type: n.typ, Subtype: n.subtype, NotificationUUID: s.uuid(), Environment: n.env, Transaction: n.rec}
	data := &devca.NotificationData{AppAppleID: s.AppAppleID, BundleID: s.BundleID, Environment: n.env,
		ConsumptionRequestReason: n.reason}
	var err error
	if n.rec != nil {
		n.rec.Payload.SignedDate = stamp
		data.BundleID, data.Environment = n.rec.Payload.BundleID, n.rec.Payload.Environment
		ev.Environment = n.rec.Payload.Environment
		if ev.SignedTransaction, err = s.CA.Sign(n.rec.Payload); err != nil {
			return Event{}, err
		}
		data.SignedTransactionInfo = ev.SignedTransaction
	}
	if n.renewal != nil {
		n.renewal.SignedDate = stamp
		if data.SignedRenewalInfo, err = s.CA.Sign(n.renewal); err != nil {
			return Event{}, err
		}
	}
	ev.SignedPayload, err = s.CA.Sign(devca.NotificationPayload{NotificationType: n.typ, Subtype: n.subtype,
		NotificationUUID: ev.NotificationUUID, Version: "2.0", SignedDate: stamp, Data: data})
	return ev, err
}

// stamp is now in milliseconds, or just after the last signature when the
// clock has not moved on (two events in one millisecond, or a clock that
// went back): the server ignores a version that is not newer.
func (s *Simulator) stamp() int64 {
	ms := devca.Millis(s.now())
	if ms <= s.State.LastSigned {
		ms = s.State.LastSigned + 1
	}
	s.State.LastSigned = ms
	return ms
}

func (s *Simulator) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Simulator) uuid() string {
	if s.NewUUID != nil {
		return s.NewUUID()
	}
	return NewUUID()
}

// NewUUID is a random (version 4) UUID, as Apple's notificationUUID is.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// record is a transaction the simulator sold.
func (s *Simulator) record(id string) (*Record, error) {
	if rec := s.State.Transactions[id]; rec != nil {
		return rec, nil
	}
	return nil, fmt.Errorf("transaction %q: the simulator has not sold it (its state holds %d transactions)",
		id, len(s.State.Transactions))
}

// sell numbers a new transaction and keeps it.
func (s *Simulator) sell(rec *Record) *Record {
	s.State.Sold++
	id := fmt.Sprint(2_000_000_000_000_000 + s.State.Sold)
	rec.Payload.TransactionID = id
	if rec.Payload.OriginalTransactionID == "" {
		rec.Payload.OriginalTransactionID = id
	}
	if s.State.Transactions == nil {
		s.State.Transactions = map[string]*Record{}
	}
	s.State.Transactions[id] = rec
	return rec
}
