package fluxiondb

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
)

// ResumePointLost is the EndEvent error when the server no longer holds the
// writes since the last delivered one: re-read the state and subscribe again.
const ResumePointLost = "resume point lost"

// BacklogInterrupted is the EndEvent error (with ResumeLost) of a subscription
// with Since whose connection dropped before its backlog was known to be
// complete (as many pushes as the server's answer announced, or a later
// write): every backlog push carries the same Seq, so it cannot resume after
// one.
const BacklogInterrupted = "connection lost during the since backlog"

// ReconnectExhausted is the EndEvent error (with ResumeLost) of the
// subscriptions still running when background reconnection gave up.
const ReconnectExhausted = "connection lost: reconnect attempts exhausted"

// maxQueued bounds the events waiting for a subscription's handler; past it
// the subscription ends with "subscriber too slow", as the server does.
// (subscriptions.maxQueued holds it, for the tests to lower.)
const maxQueued = 10000

// SubscribeParams selects what a live subscription delivers. Doc, Where and
// Filter work as in FetchLatestRecords; at most one of Since and AfterSeq may
// be set (the server refuses both).
type SubscribeParams struct {
	Col string
	// Doc is a document name or a "/pattern/flags"; empty means every document.
	Doc    string
	Where  string
	Filter string
	// Since first delivers every stored record with a timestamp above it.
	// The backlog is complete once as many pushes as the server's answer
	// announced were delivered (at once when it announced none), or a later
	// write was. Should the connection drop before that, the subscription
	// ends with BacklogInterrupted instead of resuming; after it, it resumes
	// as any other. (An answer without that count, from an older server:
	// only a later write completes it.)
	Since *int64
	// AfterSeq resumes after this sequence number (a Subscription's Seq).
	AfterSeq *int64
}

type subPayload struct {
	Col      string `json:"col"`
	Doc      string `json:"doc,omitempty"`
	Where    string `json:"where,omitempty"`
	Filter   string `json:"filter,omitempty"`
	Since    *int64 `json:"since,omitempty"`
	AfterSeq *int64 `json:"after_seq,omitempty"`
}

func (p SubscribeParams) payload(afterSeq *int64) subPayload {
	out := subPayload{Col: p.Col, Doc: p.Doc, Where: p.Where, Filter: p.Filter, Since: p.Since, AfterSeq: p.AfterSeq}
	if afterSeq != nil {
		out.Since, out.AfterSeq = nil, afterSeq
	}
	return out
}

// Event is what a subscription's handler receives: *RecordEvent,
// *DeleteEvent, *ReconnectEvent or *EndEvent.
type Event interface{ isEvent() }

// PushedRecord is one record of a RecordEvent.
type PushedRecord struct {
	Doc  string `json:"doc"`
	TS   int64  `json:"ts"`
	Data string `json:"data"`
}

// RecordEvent holds the records of one write that the subscription selects,
// in the order they were applied.
type RecordEvent struct {
	Sub     string
	Col     string
	Seq     int64 // the collection's apply sequence number of the write
	Records []PushedRecord
}

// DeleteEvent is a delete: From/To for DeleteRecord and DeleteRecordsRange,
// TS for DeleteMultipleRecords (one event per document; all but the last
// have More), Doc alone for DeleteDocument, none of them for DeleteCollection.
type DeleteEvent struct {
	Sub      string
	Col      string
	Seq      int64
	Doc      string
	From, To *int64
	TS       []int64
	More     bool
}

// ReconnectEvent reports that the connection was replaced and the
// subscription resumed after AfterSeq without a gap.
type ReconnectEvent struct {
	Sub      string
	AfterSeq int64
}

// EndEvent is the last event of a subscription the server (or the client,
// for "subscriber too slow", BacklogInterrupted, ReconnectExhausted or a
// failed resume) ended. ResumeLost means the writes since the last delivered
// one cannot be delivered: the state must be re-read before subscribing
// again.
type EndEvent struct {
	Sub        string
	Error      string
	ResumeLost bool
}

func (*RecordEvent) isEvent()    {}
func (*DeleteEvent) isEvent()    {}
func (*ReconnectEvent) isEvent() {}
func (*EndEvent) isEvent()       {}

type wirePush struct {
	Type    string         `json:"type"`
	Sub     string         `json:"sub"`
	Col     string         `json:"col"`
	Seq     int64          `json:"seq"`
	Records []PushedRecord `json:"records"`
	Doc     string         `json:"doc"`
	From    *int64         `json:"from"`
	To      *int64         `json:"to"`
	TS      []int64        `json:"ts"`
	More    bool           `json:"more"`
	Error   string         `json:"error"`
}

// Subscription is a running live subscription. Its handler runs on a
// goroutine of its own, one event at a time, in the order of the pushes.
type Subscription struct {
	client  *Client
	params  SubscribeParams
	handler func(Event)

	mu      sync.Mutex
	cond    *sync.Cond
	sess    *session
	id      string
	seq     int64
	active  bool
	closing bool
	// discarded: the events not handled yet were dropped (Unsubscribe,
	// Close), and dropped is closed.
	discarded bool
	// resuming is the session a resume request is on its way on, or nil.
	resuming *session
	// backlog: a Since subscription's backlog, whose pushes carry
	// backlogSeq, may not have arrived in full: neither the backlogLeft
	// pushes still announced (0: the answer did not say how many) nor a
	// later write have.
	backlog     bool
	backlogSeq  int64
	backlogLeft int64
	queue       []Event
	quit        chan struct{} // closed when the subscription stops
	dropped     chan struct{} // closed when it stops without its events (Unsubscribe, Close)
	stopped     chan struct{} // closed when its handler goroutine has returned
}

// ID is the server's id for the subscription (a new one after a reconnect).
func (s *Subscription) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// Seq is the sequence number of the last write received in full.
func (s *Subscription) Seq() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

// Active reports whether the subscription still runs.
func (s *Subscription) Active() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// Done is closed once the subscription has ended and its handler returned.
func (s *Subscription) Done() <-chan struct{} { return s.stopped }

// Unsubscribe ends the subscription; no event is handed to the handler after
// it returns (one being handled may finish). It drops the events not handled
// yet, also those of a subscription that had already ended (its EndEvent
// included), and Done closes once the handler has returned: on a
// subscription the server or the client ended, it frees the goroutines of a
// SubscribeChan whose channel nobody reads. Client.Close does the same for
// every subscription. It returns nil when the connection is gone or drops
// before the server answered (the server's subscription ends with the
// connection, and the client does not resume it); an error means the server
// may still hold it (ErrRequestTimeout, a *ServerError), though the client
// has ended it all the same.
func (s *Subscription) Unsubscribe() error {
	return s.client.subs.unsubscribe(context.Background(), s)
}

// run hands the queued events to the handler, one at a time. Each is taken
// from the queue under s.mu just before it is handed over, so that once
// Unsubscribe (or Close) has emptied the queue, nothing more is.
func (s *Subscription) run() {
	defer close(s.stopped)
	defer s.client.subs.finished(s)
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.closing {
			s.cond.Wait()
		}
		if len(s.queue) == 0 { // closing, and every event handled or dropped
			s.mu.Unlock()
			return
		}
		ev := s.queue[0]
		s.queue[0] = nil
		if s.queue = s.queue[1:]; len(s.queue) == 0 {
			s.queue = nil // let the drained array go
		}
		s.mu.Unlock()
		s.handler(ev)
	}
}

// enqueue hands ev to the handler goroutine; false when it had to end the
// subscription instead (too many events waiting: ev is dropped and an
// EndEvent "subscriber too slow" queued, with lost as its ResumeLost). An
// EndEvent is always queued. s.mu must be held.
func (s *Subscription) enqueueLocked(ev Event, lost bool) bool {
	if s.closing {
		return true
	}
	if _, end := ev.(*EndEvent); !end && len(s.queue) >= s.client.subs.maxQueued {
		s.queue = append(s.queue, &EndEvent{Sub: s.id, Error: "subscriber too slow", ResumeLost: lost})
		s.stopLocked(false)
		return false
	}
	s.queue = append(s.queue, ev)
	s.cond.Signal()
	return true
}

// stopLocked ends the subscription; with drop, events not yet handled are
// discarded, also those of a subscription that had already ended (its
// handler goroutine then returns once the event it may be handling is done).
// s.mu must be held.
func (s *Subscription) stopLocked(drop bool) {
	if s.active {
		s.active = false
		s.closing = true
		close(s.quit)
	}
	if drop && !s.discarded {
		s.discarded = true
		s.queue = nil
		close(s.dropped)
	}
	s.cond.Signal()
}

type subKey struct {
	sess *session
	id   string
}

// subscriptions routes pushes to their subscriptions and resumes them on new
// connections.
type subscriptions struct {
	c      *Client
	mu     sync.Mutex
	byID   map[subKey]*Subscription
	active map[*Subscription]struct{}
	// live holds every subscription whose handler goroutine runs, ended
	// ones too while their last events are handled (or their handler is
	// stuck, as SubscribeChan's on a channel nobody reads): Close stops them.
	live map[*Subscription]struct{}
	// early holds the pushes for ids not known yet, numbered in arrival
	// order: a subscription's first pushes may come before its answer, or be
	// routed before the goroutine that waits for the answer registers it.
	// They are kept, however many (the server bounds what it sends for one
	// request), while a sub request sent before them waits for its answer.
	early []subEarly
	kept  uint64   // numbers the pushes kept in early
	marks []uint64 // one per sub request not settled yet: kept when it was sent

	maxQueued int // maxQueued, or less in tests

	// beforeRegister, when set (by tests), runs in subscribe between the
	// answer and the subscription's registration.
	beforeRegister func()
}

type subEarly struct {
	n   uint64
	key subKey
	msg []byte
}

func newSubscriptions(c *Client) *subscriptions {
	return &subscriptions{c: c, byID: make(map[subKey]*Subscription), active: make(map[*Subscription]struct{}),
		live: make(map[*Subscription]struct{}), maxQueued: maxQueued}
}

// route is called by a session's reader for every frame without an id.
func (m *subscriptions) route(s *session, msg []byte) {
	var w wirePush
	if json.Unmarshal(msg, &w) != nil || w.Sub == "" {
		return
	}
	key := subKey{s, w.Sub}
	m.mu.Lock()
	defer m.mu.Unlock()
	sub := m.byID[key]
	if sub == nil {
		if len(m.marks) > 0 {
			m.early = append(m.early, subEarly{m.kept, key, msg})
			m.kept++
		}
		return
	}
	m.deliverLocked(sub, &w)
}

// deliverLocked hands one push to sub. m.mu must be held.
func (m *subscriptions) deliverLocked(sub *Subscription, w *wirePush) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if !sub.active {
		return
	}
	var ev Event
	switch w.Type {
	case "subend":
		sub.enqueueLocked(&EndEvent{Sub: w.Sub, Error: w.Error, ResumeLost: w.Error == ResumePointLost}, false)
		sub.stopLocked(false)
		m.forgetLocked(sub)
		return
	case "rec":
		ev = &RecordEvent{Sub: w.Sub, Col: w.Col, Seq: w.Seq, Records: w.Records}
	case "del":
		ev = &DeleteEvent{Sub: w.Sub, Col: w.Col, Seq: w.Seq, Doc: w.Doc, From: w.From, To: w.To, TS: w.TS, More: w.More}
	default:
		return
	}
	// A backlog push that cannot be queued is lost for a resume too: every
	// backlog push carries the same Seq, which Seq already reports.
	lost := sub.backlog && w.Seq <= sub.backlogSeq
	if !sub.enqueueLocked(ev, lost) {
		// Seq stays at the last write queued: a resume after it delivers
		// this one again.
		m.forgetLocked(sub)
		sess, id := sub.sess, sub.id
		go m.sendUnsub(sess, id)
		return
	}
	if sub.backlog {
		if w.Seq > sub.backlogSeq {
			sub.backlog = false // a later write: the backlog is complete
		} else if w.Type == "rec" && w.Seq == sub.backlogSeq && sub.backlogLeft > 0 {
			sub.backlogLeft--
			sub.backlog = sub.backlogLeft > 0 // every announced push arrived
		}
	}
	if !w.More {
		sub.seq = w.Seq
	}
}

// endLocked ends sub with an EndEvent the client made. m.mu and sub.mu must
// be held.
func (m *subscriptions) endLocked(sub *Subscription, msg string, resumeLost bool) {
	sub.enqueueLocked(&EndEvent{Sub: sub.id, Error: msg, ResumeLost: resumeLost}, false)
	sub.stopLocked(false)
	m.forgetLocked(sub)
}

// forgetLocked drops sub from the tables. m.mu must be held.
func (m *subscriptions) forgetLocked(sub *Subscription) {
	delete(m.active, sub)
	if key := (subKey{sub.sess, sub.id}); m.byID[key] == sub {
		delete(m.byID, key)
	}
}

// registerLocked files sub under its session and id and hands it the pushes
// that came before the answer. m.mu must be held.
func (m *subscriptions) registerLocked(sub *Subscription) {
	key := subKey{sub.sess, sub.id}
	m.byID[key] = sub
	m.active[sub] = struct{}{}
	m.live[sub] = struct{}{}
	rest := m.early[:0]
	var mine []subEarly
	for _, e := range m.early {
		if e.key == key {
			mine = append(mine, e)
		} else {
			rest = append(rest, e)
		}
	}
	m.early = rest
	for _, e := range mine {
		var w wirePush
		if json.Unmarshal(e.msg, &w) == nil {
			m.deliverLocked(sub, &w)
		}
	}
}

// beginLocked notes a sub request about to be sent, whose pushes may come
// before its answer; the caller calls settled with the mark once it has
// handled the answer. m.mu must be held.
func (m *subscriptions) beginLocked() uint64 {
	m.marks = append(m.marks, m.kept)
	return m.kept
}

// settled forgets a sub request's mark, and the pushes kept before every
// request still waiting was sent.
func (m *subscriptions) settled(mark uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, v := range m.marks {
		if v == mark {
			m.marks = append(m.marks[:i], m.marks[i+1:]...)
			break
		}
	}
	if len(m.marks) == 0 {
		m.early = nil
		return
	}
	oldest := m.marks[0]
	for _, v := range m.marks[1:] {
		oldest = min(oldest, v)
	}
	i := 0
	for i < len(m.early) && m.early[i].n < oldest {
		i++
	}
	if i > 0 {
		m.early = append([]subEarly(nil), m.early[i:]...)
	}
}

type subAnswer struct {
	Sub string `json:"sub"`
	Seq int64  `json:"seq"`
	// Backlog is, with Since, how many backlog pushes follow (absent from
	// older servers).
	Backlog *int64 `json:"backlog"`
}

// unsubLate ends a subscription the server started after its requester
// stopped waiting for the answer.
func (m *subscriptions) unsubLate(s *session, msg []byte) {
	var answer struct {
		subAnswer
		Error *string `json:"error"`
	}
	if json.Unmarshal(msg, &answer) == nil && answer.Error == nil && answer.Sub != "" {
		go m.sendUnsub(s, answer.Sub)
	}
}

func (m *subscriptions) subscribe(ctx context.Context, params SubscribeParams, handler func(Event)) (*Subscription, error) {
	m.mu.Lock()
	mark := m.beginLocked()
	m.mu.Unlock()
	defer m.settled(mark)
	var answer subAnswer
	sess, err := m.c.doWith(ctx, nil, "sub", params.payload(nil), &answer, m.unsubLate)
	if err != nil {
		return nil, err
	}
	seq := answer.Seq
	if params.AfterSeq != nil {
		seq = *params.AfterSeq // delivered in full so far: the writes after it are replayed first
	}
	sub := &Subscription{
		client: m.c, params: params, handler: handler,
		sess: sess, id: answer.Sub, seq: seq, active: true,
		backlog: params.Since != nil, backlogSeq: answer.Seq,
		quit: make(chan struct{}), dropped: make(chan struct{}), stopped: make(chan struct{}),
	}
	if sub.backlog && answer.Backlog != nil && *answer.Backlog >= 0 {
		// Complete at once when empty; else once that many pushes arrived.
		sub.backlogLeft = *answer.Backlog
		sub.backlog = sub.backlogLeft > 0
	}
	sub.cond = sync.NewCond(&sub.mu)
	go sub.run()
	m.mu.Lock()
	hook := m.beforeRegister
	m.mu.Unlock()
	if hook != nil {
		hook()
	}
	m.mu.Lock()
	m.registerLocked(sub)
	m.mu.Unlock()
	if sess.isEnded() {
		m.filedLate(sub, sess)
	}
	return sub, nil
}

// filedLate takes care of sub, just filed under session sess, which had
// already ended: the reconnection that followed may have looked for the
// subscriptions to resume before sub was filed, and then missed it.
func (m *subscriptions) filedLate(sub *Subscription, sess *session) {
	c := m.c
	c.mu.Lock()
	cur, closed := c.sess, c.closed
	resumes := !closed && c.opts.ReconnectAttempts >= 0
	if resumes && cur != nil && cur != sess && !cur.isEnded() {
		// The new connection is there already: resume sub on it.
		c.wg.Add(1)
		c.mu.Unlock()
		go func() {
			defer c.wg.Done()
			m.resumeOne(cur, sub)
		}()
		return
	}
	// A connection (even one that has ended too, whose reader has not
	// reported yet), a reconnect loop or a connection attempt: the next
	// connection resumes it.
	waiting := c.reconnecting || c.dial != nil || cur != nil
	c.mu.Unlock()
	if resumes && waiting {
		return
	}
	// Nothing will resume it: end it as the drop would have, had it been
	// filed a moment earlier.
	m.mu.Lock()
	defer m.mu.Unlock()
	sub.mu.Lock()
	defer sub.mu.Unlock()
	switch {
	case closed:
		sub.stopLocked(true)
		m.forgetLocked(sub)
	case !sub.active || sub.sess != sess:
	case c.opts.ReconnectAttempts < 0:
		m.endLocked(sub, "connection lost: "+sess.cause().Error(), true)
	default:
		m.endLocked(sub, ReconnectExhausted, true)
	}
}

func (m *subscriptions) unsubscribe(ctx context.Context, sub *Subscription) error {
	m.mu.Lock()
	sub.mu.Lock()
	wasActive := sub.active
	sess, id := sub.sess, sub.id
	sub.stopLocked(true)
	sub.mu.Unlock()
	if wasActive {
		m.forgetLocked(sub)
	}
	m.mu.Unlock()
	if !wasActive || sess == nil || sess.isEnded() {
		// Its connection is gone, and the server's subscription with it; a
		// resume on its way is ended by resumeOne once answered.
		return nil
	}
	_, err := m.c.doWith(ctx, sess, "unsub", map[string]string{"sub": id}, nil, nil)
	var se *ServerError
	var notSent *notSentError
	if errors.As(err, &se) && se.Message == "unknown subscription" || errors.As(err, &notSent) ||
		errors.Is(err, ErrConnectionLost) || errors.Is(err, ErrClosed) {
		// The server ended it meanwhile, or its connection is gone (before or
		// after the request was sent), and the server's subscription with it;
		// the client no longer resumes it.
		return nil
	}
	return err
}

// sendUnsub tells the server about a subscription the client ended itself.
// Ids are per connection: it is sent on sess only.
func (m *subscriptions) sendUnsub(sess *session, id string) {
	if sess == nil || sess.isEnded() {
		return
	}
	ctx, cancel := m.c.requestContext(m.c.ctx)
	defer cancel()
	_, _ = m.c.doWith(ctx, sess, "unsub", map[string]string{"sub": id}, nil, nil)
}

// dropped ends, when session s has ended, the Since subscriptions on it whose
// backlog may not have arrived in full.
func (m *subscriptions) dropped(s *session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for sub := range m.active {
		sub.mu.Lock()
		if sub.sess == s && sub.backlog {
			m.endLocked(sub, BacklogInterrupted, true)
		}
		sub.mu.Unlock()
	}
}

// endAll ends every subscription with an EndEvent (reconnection gave up).
func (m *subscriptions) endAll(msg string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for sub := range m.active {
		sub.mu.Lock()
		m.endLocked(sub, msg, true)
		sub.mu.Unlock()
	}
}

// needResume reports whether some subscription runs on another session than s.
func (m *subscriptions) needResume(s *session) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for sub := range m.active {
		if sub.sess != s {
			return true
		}
	}
	return false
}

// resume subscribes again, with after_seq, every subscription that is not on
// session s, and reports each with a ReconnectEvent. One whose new connection
// drops too is resumed on the next one.
func (m *subscriptions) resume(s *session) {
	m.mu.Lock()
	var todo []*Subscription
	for sub := range m.active {
		if sub.sess != s {
			todo = append(todo, sub)
		}
	}
	m.mu.Unlock()
	for _, sub := range todo {
		m.resumeOne(s, sub)
	}
}

// resumeOne resumes sub on session s. A failure while s lives ends sub with
// an EndEvent (nothing else would resume it); a subscription the server
// started for it after the client stopped waiting, or after sub ended, is
// unsubscribed.
func (m *subscriptions) resumeOne(s *session, sub *Subscription) {
	m.mu.Lock()
	sub.mu.Lock()
	if !sub.active || sub.sess == s || sub.resuming == s {
		// Ended, or already resumed (or being resumed) on s.
		sub.mu.Unlock()
		m.mu.Unlock()
		return
	}
	if sub.backlog {
		m.endLocked(sub, BacklogInterrupted, true)
		sub.mu.Unlock()
		m.mu.Unlock()
		return
	}
	after := sub.seq
	sub.resuming = s
	sub.mu.Unlock()
	mark := m.beginLocked()
	m.mu.Unlock()
	defer m.settled(mark)
	ctx, cancel := m.c.requestContext(m.c.ctx)
	defer cancel()
	var answer subAnswer
	sess, err := m.c.doWith(ctx, s, "sub", sub.params.payload(&after), &answer, m.unsubLate)
	m.mu.Lock()
	defer m.mu.Unlock()
	sub.mu.Lock()
	if sub.resuming == s {
		sub.resuming = nil
	}
	if !sub.active {
		sub.mu.Unlock()
		if err == nil {
			go m.sendUnsub(sess, answer.Sub) // unsubscribed while the answer was on its way
		}
		return
	}
	var se *ServerError
	if errors.As(err, &se) {
		m.endLocked(sub, se.Message, false)
		sub.mu.Unlock()
		return
	}
	if err != nil {
		if !s.isEnded() && m.c.ctx.Err() == nil {
			m.endLocked(sub, "resubscribing failed: "+err.Error(), false)
		}
		sub.mu.Unlock()
		return // otherwise the next connection resumes it
	}
	if key := (subKey{sub.sess, sub.id}); m.byID[key] == sub {
		delete(m.byID, key)
	}
	sub.sess, sub.id = sess, answer.Sub
	if !sub.enqueueLocked(&ReconnectEvent{Sub: answer.Sub, AfterSeq: after}, false) {
		// Ended as too slow: Seq is still after, from which it can resume.
		sub.mu.Unlock()
		m.forgetLocked(sub)
		go m.sendUnsub(sess, answer.Sub)
		return
	}
	sub.mu.Unlock()
	m.registerLocked(sub)
}

// closeAll ends every subscription without an event (the client is
// closing), and drops the events not handled yet of those already ended.
func (m *subscriptions) closeAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for sub := range m.live {
		sub.mu.Lock()
		sub.stopLocked(true)
		sub.mu.Unlock()
	}
	m.active = make(map[*Subscription]struct{})
	m.byID = make(map[subKey]*Subscription)
}

// finished forgets sub, whose handler goroutine has returned.
func (m *subscriptions) finished(sub *Subscription) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.live, sub)
}

// Subscribe starts a live subscription: handler receives every write the
// server applies to params.Col that params select (*RecordEvent,
// *DeleteEvent, in apply order), a *ReconnectEvent when the client resumed it
// on a new connection without a gap, and an *EndEvent when it ended. ctx
// bounds the request and the subscription's life: when ctx ends, the
// subscription is ended too.
//
// The handler runs on a goroutine of the subscription. A panic in it is not
// recovered: it ends the program, as any unrecovered panic does; a handler
// that must survive its own bugs recovers itself.
func (c *Client) Subscribe(ctx context.Context, params SubscribeParams, handler func(Event)) (*Subscription, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	reqCtx, cancel := c.requestContext(ctx)
	defer cancel()
	sub, err := c.subs.subscribe(reqCtx, params, handler)
	if err != nil {
		return nil, err
	}
	if ctx.Done() != nil {
		go func() {
			select {
			case <-ctx.Done():
				_ = sub.Unsubscribe()
			case <-sub.quit:
			}
		}()
	}
	return sub, nil
}

// SubscribeChan is Subscribe with the events on a channel, closed once the
// subscription has ended and its events were read, or dropped by Unsubscribe
// or Client.Close (which close it even when nobody reads it). A consumer
// that falls more than 10,000 events behind ends the subscription
// ("subscriber too slow").
func (c *Client) SubscribeChan(ctx context.Context, params SubscribeParams) (*Subscription, <-chan Event, error) {
	ch := make(chan Event, 64)
	var sub *Subscription
	ready := make(chan struct{})
	sub, err := c.Subscribe(ctx, params, func(ev Event) {
		<-ready
		select {
		case ch <- ev:
		case <-sub.dropped:
			// Unsubscribed while the consumer was not reading: drop it.
		}
	})
	if err != nil {
		return nil, nil, err
	}
	close(ready)
	go func() {
		<-sub.stopped
		close(ch)
	}()
	return sub, ch, nil
}
