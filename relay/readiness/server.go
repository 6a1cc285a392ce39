package readiness

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay/creds"
)

//go:embed web
var webFS embed.FS

// Options configure a readiness server.
type Options struct {
	Program *ir.Program
	// LintCodes are the codes validate reported for the policy.
	LintCodes map[string]bool
	// Secrets are the relays' TURN REST shared secrets; the first mints the
	// short-lived credentials each test session gets.
	Secrets []string
	// CredTTL is how long minted credentials live (default 10 minutes).
	CredTTL time.Duration
	// Store keeps results (default: in memory).
	Store Store
	// Media places the server's media peer for test calls.
	Media MediaOptions
	// AdminToken, when set, is required (as a bearer token or the password
	// of HTTP basic auth) for the dashboard, exports and metrics; without
	// it only loopback clients may see them.
	AdminToken string
	// Targets replaces the plan from the policy (tests, and a server whose
	// relays answer under other names).
	Targets []Target
	Logger  *slog.Logger
	// Registerer takes the server's metrics (default: its own registry).
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	Now        func() time.Time
}

// Bounds of the server.
const (
	maxBody          = 64 << 10
	sessionTTL       = 15 * time.Minute
	maxSessions      = 4096
	sessionsPerMin   = 20 // per source address
	maxCallsPerSess  = 16
	maxMediaPeers    = 64
	defaultCallAudio = 3 * time.Second
)

// Server is the readiness HTTP handler.
type Server struct {
	opt     Options
	targets []Target
	byID    map[string]Target
	api     *webrtc.API
	mux     *http.ServeMux
	log     *slog.Logger
	metrics *metrics

	mu       sync.Mutex
	sessions map[string]*session
	perSrc   map[netip.Addr]*window
	peers    int
}

type session struct {
	token   string
	group   string
	src     netip.Addr
	created time.Time
	calls   map[string]*mediaPeer
	posted  bool
}

type window struct {
	start time.Time
	n     int
}

// New builds a server. It fails when the policy gives agents TURN relays but
// no secret to mint their credentials with.
func New(opt Options) (*Server, error) {
	if opt.Program == nil {
		return nil, errors.New("readiness: no policy")
	}
	if opt.CredTTL <= 0 {
		opt.CredTTL = 10 * time.Minute
	}
	if opt.Media.Duration <= 0 {
		opt.Media.Duration = defaultCallAudio
	}
	if opt.Store == nil {
		opt.Store = NewMemStore(0)
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Registerer == nil {
		reg := prometheus.NewRegistry()
		opt.Registerer, opt.Gatherer = reg, reg
	}
	s := &Server{opt: opt, log: opt.Logger, sessions: map[string]*session{}, perSrc: map[netip.Addr]*window{}, byID: map[string]Target{}}
	s.targets = opt.Targets
	if s.targets == nil {
		s.targets = Plan(opt.Program)
	}
	var v4, v6 bool
	for _, a := range opt.Media.Addrs {
		v4, v6 = v4 || a.Unmap().Is4(), v6 || a.Unmap().Is6()
	}
	for i := range s.targets {
		t := &s.targets[i]
		if t.Kind != "stun" && len(opt.Media.Addrs) > 0 && len(t.Addrs) > 0 {
			t.NoCall = true
			for _, a := range t.Addrs {
				if (a.Unmap().Is4() && v4) || (a.Unmap().Is6() && v6) {
					t.NoCall = false
				}
			}
		}
	}
	for _, t := range s.targets {
		s.byID[t.ID] = t
	}
	if err := NeedsSecret(s.targets, opt.Secrets); err != nil {
		return nil, err
	}
	var err error
	if s.api, err = newMediaAPI(opt.Media); err != nil {
		return nil, fmt.Errorf("readiness: media: %w", err)
	}
	if s.metrics, err = newMetrics(opt.Registerer); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

// NeedsSecret says whether targets include a relay the server must mint
// credentials for while no secret is given.
func NeedsSecret(targets []Target, secrets []string) error {
	for _, t := range targets {
		if t.Relay != "" && t.Username == "" && len(secrets) == 0 {
			return fmt.Errorf("readiness: relay %q needs a TURN REST shared secret (--secret-file) so the server can mint test credentials", t.Relay)
		}
	}
	return nil
}

// Targets returns what the server tests.
func (s *Server) Targets() []Target { return s.targets }

func (s *Server) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(webFS, "web")
	page := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, err := fs.ReadFile(static, name)
			if err != nil {
				http.NotFound(w, r)
				return
			}
			ct := mime.TypeByExtension(name[strings.LastIndexByte(name, '.'):])
			w.Header().Set("Content-Type", ct)
			w.Write(b)
		}
	}
	m.HandleFunc("GET /{$}", page("index.html"))
	m.HandleFunc("GET /app.js", page("app.js"))
	m.HandleFunc("GET /style.css", page("style.css"))
	m.HandleFunc("GET /dashboard", s.admin(page("dashboard.html")))
	m.HandleFunc("GET /dashboard.js", page("dashboard.js"))
	m.HandleFunc("POST /api/session", s.handleSession)
	m.HandleFunc("POST /api/call", s.handleCall)
	m.HandleFunc("POST /api/results", s.handleResults)
	m.HandleFunc("GET /api/dashboard", s.admin(s.handleDashboard))
	m.HandleFunc("GET /api/results.json", s.admin(s.handleExportJSON))
	m.HandleFunc("GET /api/results/{id}", s.admin(s.handleResult))
	m.HandleFunc("GET /api/results.csv", s.admin(s.handleExportCSV))
	m.Handle("GET /metrics", s.admin(promhttp.HandlerFor(s.opt.Gatherer, promhttp.HandlerOpts{}).ServeHTTP))
	s.mux = m
}

// csp allows the page's own script, style and API only: no inline script,
// no other origin, no frames, no forms.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// ServeHTTP sets the security headers on every response.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	s.mux.ServeHTTP(w, r)
}

func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		a, _ := netip.ParseAddr(host)
		return a.Unmap()
	}
	return ap.Addr().Unmap()
}

// admin lets loopback clients through, and others only with the admin token.
func (s *Server) admin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opt.AdminToken == "" && remoteAddr(r).IsLoopback() {
			next(w, r)
			return
		}
		got := ""
		if _, pass, ok := r.BasicAuth(); ok {
			got = pass
		} else if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
			got = strings.TrimPrefix(a, "Bearer ")
		}
		if s.opt.AdminToken == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.opt.AdminToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="turnwall readiness"`)
			httpError(w, http.StatusUnauthorized, "the dashboard needs the admin token")
			return
		}
		next(w, r)
	}
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	enc.Encode(v)
}

// decode reads one JSON object of at most maxBody bytes, refusing unknown
// fields, trailing data and other content types.
func decode(w http.ResponseWriter, r *http.Request, v any) (int, error) {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		return http.StatusUnsupportedMediaType, errors.New("send application/json")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return http.StatusRequestEntityTooLarge, fmt.Errorf("body larger than %d bytes", maxBody)
		}
		return http.StatusBadRequest, errors.New("malformed JSON: " + clean(err.Error()))
	}
	if dec.More() {
		return http.StatusBadRequest, errors.New("one JSON object only")
	}
	return 0, nil
}

func token() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sessionOf finds the session of a request's bearer token.
func (s *Server) sessionOf(r *http.Request) *session {
	a := r.Header.Get("Authorization")
	if !strings.HasPrefix(a, "Bearer ") {
		return nil
	}
	tok := strings.TrimPrefix(a, "Bearer ")
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[tok]
	if ss == nil || s.opt.Now().Sub(ss.created) > sessionTTL {
		return nil
	}
	return ss
}

// SessionTarget is a target with the credentials minted for one session.
type SessionTarget struct {
	Target
	Username   string `json:"username,omitempty"`
	Credential string `json:"credential,omitempty"`
	Label      string `json:"label"`
}

type sessionReply struct {
	Token     string          `json:"token"`
	Group     string          `json:"group"`
	Source    string          `json:"source"`
	Policy    string          `json:"policy"`
	Targets   []SessionTarget `json:"targets"`
	CallMs    int64           `json:"call_ms"`
	ExpiresAt time.Time       `json:"expires_at"`
}

func (s *Server) handleSession(w http.ResponseWriter, r *http.Request) {
	src := remoteAddr(r)
	now := s.opt.Now()
	s.mu.Lock()
	for tok, ss := range s.sessions {
		if now.Sub(ss.created) > sessionTTL {
			delete(s.sessions, tok)
		}
	}
	win := s.perSrc[src]
	if win == nil || now.Sub(win.start) > time.Minute {
		if len(s.perSrc) > maxSessions {
			s.perSrc = map[netip.Addr]*window{}
		}
		win = &window{start: now}
		s.perSrc[src] = win
	}
	win.n++
	full := len(s.sessions) >= maxSessions
	limited := win.n > sessionsPerMin
	s.mu.Unlock()
	if limited || full {
		s.metrics.refused.WithLabelValues("rate").Inc()
		w.Header().Set("Retry-After", "60")
		httpError(w, http.StatusTooManyRequests, "too many test sessions from this address; try again in a minute")
		return
	}
	ss := &session{token: token(), src: src, created: now, group: GroupOf(s.opt.Program, src), calls: map[string]*mediaPeer{}}
	rep := sessionReply{Token: ss.token, Group: ss.group, Source: src.String(), Policy: s.opt.Program.Policy.Name,
		CallMs: s.opt.Media.Duration.Milliseconds(), ExpiresAt: now.Add(sessionTTL)}
	for _, t := range s.targets {
		st := SessionTarget{Target: t, Label: t.label()}
		switch {
		case t.Username != "":
			st.Username, st.Credential = t.Username, t.Credential
		case t.Relay != "":
			st.Username, st.Credential = creds.Generate(s.opt.Secrets[0], "readiness-"+ss.token[:8], now.Add(s.opt.CredTTL))
		}
		rep.Targets = append(rep.Targets, st)
	}
	s.mu.Lock()
	s.sessions[ss.token] = ss
	s.mu.Unlock()
	s.metrics.sessions.Inc()
	writeJSON(w, rep)
}

type callRequest struct {
	Target string `json:"target"`
	SDP    string `json:"sdp"`
}

type callReply struct {
	ID  string `json:"id"`
	SDP string `json:"sdp"`
}

func (s *Server) handleCall(w http.ResponseWriter, r *http.Request) {
	ss := s.sessionOf(r)
	if ss == nil {
		httpError(w, http.StatusUnauthorized, "no test session: reload the page")
		return
	}
	var req callRequest
	if code, err := decode(w, r, &req); err != nil {
		httpError(w, code, err.Error())
		return
	}
	if t, ok := s.byID[req.Target]; !ok || t.Kind == "stun" || t.NoCall {
		httpError(w, http.StatusBadRequest, "target names no TURN server of this session")
		return
	}
	if !strings.HasPrefix(req.SDP, "v=0") {
		httpError(w, http.StatusBadRequest, "sdp is not a session description")
		return
	}
	s.mu.Lock()
	if len(ss.calls) >= maxCallsPerSess || s.peers >= maxMediaPeers || ss.posted {
		s.mu.Unlock()
		httpError(w, http.StatusTooManyRequests, "too many test calls")
		return
	}
	s.peers++
	id := token()[:12]
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	mp, sdp, err := answer(ctx, s.api, id, req.SDP, s.opt.Media.Duration)
	if err != nil {
		s.mu.Lock()
		s.peers--
		s.mu.Unlock()
		httpError(w, http.StatusBadRequest, "cannot answer the offer: "+clean(err.Error()))
		return
	}
	s.mu.Lock()
	ss.calls[id] = mp
	s.mu.Unlock()
	go func() {
		<-mp.done
		s.mu.Lock()
		s.peers--
		s.mu.Unlock()
	}()
	writeJSON(w, callReply{ID: id, SDP: sdp})
}

func (s *Server) handleResults(w http.ResponseWriter, r *http.Request) {
	ss := s.sessionOf(r)
	if ss == nil {
		httpError(w, http.StatusUnauthorized, "no test session: reload the page")
		return
	}
	var sub Submission
	if code, err := decode(w, r, &sub); err != nil {
		s.metrics.refused.WithLabelValues("malformed").Inc()
		httpError(w, code, err.Error())
		return
	}
	if err := sub.validate(s.byID); err != nil {
		s.metrics.refused.WithLabelValues("invalid").Inc()
		httpError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	s.mu.Lock()
	if ss.posted {
		s.mu.Unlock()
		httpError(w, http.StatusConflict, "this session's results were already sent")
		return
	}
	ss.posted = true
	for i := range sub.Calls {
		if mp := ss.calls[sub.Calls[i].ID]; mp != nil {
			sub.Calls[i].ServerReceived = int(mp.received.Load())
			sub.Calls[i].ServerSent = int(mp.sent.Load())
		} else {
			sub.Calls[i].ID = ""
		}
	}
	calls := ss.calls
	s.mu.Unlock()
	for _, mp := range calls {
		mp.close()
	}
	rec := Record{ID: ss.token[:12], At: s.opt.Now().UTC(), Group: ss.group, Source: ss.src.String(),
		UserAgent: clean(r.UserAgent()), Checks: sub.Checks, Calls: sub.Calls}
	Judge(s.opt.Program, &rec, s.byID, ss.src, s.opt.LintCodes)
	if err := s.opt.Store.Add(rec); err != nil {
		s.log.Error("readiness: storing a result failed", "err", clean(err.Error()))
		httpError(w, http.StatusInternalServerError, "the result could not be stored")
		return
	}
	s.metrics.observe(rec)
	s.log.Info("readiness result", "group", rec.Group, "source", rec.Source, "verdict", rec.Verdict)
	writeJSON(w, rec)
}
