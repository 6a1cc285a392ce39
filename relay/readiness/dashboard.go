package readiness

import (
	"encoding/csv"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Dashboard is what the security team's page shows: per agents group, the
// verdicts and a target x outcome matrix with the latest explanation of each
// failing cell, and the verdicts over time.
type Dashboard struct {
	Policy string       `json:"policy"`
	Groups []GroupStats `json:"groups"`
	Trend  []TrendPoint `json:"trend"`
	Recent []Record     `json:"recent"`
}

// GroupStats is one agents group's results.
type GroupStats struct {
	Group    string         `json:"group"` // "" for sources in no group
	Results  int            `json:"results"`
	Verdicts map[string]int `json:"verdicts"`
	Cells    []Cell         `json:"cells"`
}

// Cell is one target's outcomes for a group.
type Cell struct {
	Target      string `json:"target"`
	Label       string `json:"label"`
	Transport   string `json:"transport"`
	OK          int    `json:"ok"`
	Failed      int    `json:"failed"`
	Explanation string `json:"explanation,omitempty"` // the latest failure's
	Rule        string `json:"rule,omitempty"`
	Line        string `json:"line,omitempty"`
}

// TrendPoint counts verdicts in one hour.
type TrendPoint struct {
	Hour     time.Time `json:"hour"`
	Ready    int       `json:"ready"`
	Degraded int       `json:"degraded"`
	NotReady int       `json:"not_ready"`
}

// Summarize builds the dashboard from records (oldest first).
func Summarize(policy string, recs []Record, recent int) Dashboard {
	d := Dashboard{Policy: policy, Groups: []GroupStats{}, Trend: []TrendPoint{}, Recent: []Record{}}
	groups := map[string]*GroupStats{}
	cells := map[string]map[string]*Cell{}
	trend := map[time.Time]*TrendPoint{}
	for _, r := range recs {
		g := groups[r.Group]
		if g == nil {
			g = &GroupStats{Group: r.Group, Verdicts: map[string]int{}}
			groups[r.Group] = g
			cells[r.Group] = map[string]*Cell{}
		}
		g.Results++
		g.Verdicts[r.Verdict]++
		for _, c := range r.Checks {
			cell := cells[r.Group][c.Target]
			if cell == nil {
				cell = &Cell{Target: c.Target, Label: c.Label, Transport: c.Transport}
				cells[r.Group][c.Target] = cell
			}
			if c.Outcome == "ok" {
				cell.OK++
				continue
			}
			cell.Failed++
			cell.Explanation, cell.Rule, cell.Line = c.Explanation, c.Decision.Rule, c.Decision.Line
		}
		h := r.At.UTC().Truncate(time.Hour)
		tp := trend[h]
		if tp == nil {
			tp = &TrendPoint{Hour: h}
			trend[h] = tp
		}
		switch r.Verdict {
		case Ready:
			tp.Ready++
		case Degraded:
			tp.Degraded++
		default:
			tp.NotReady++
		}
	}
	for name, g := range groups {
		for _, c := range cells[name] {
			g.Cells = append(g.Cells, *c)
		}
		sort.Slice(g.Cells, func(i, j int) bool { return g.Cells[i].Target < g.Cells[j].Target })
		d.Groups = append(d.Groups, *g)
	}
	sort.Slice(d.Groups, func(i, j int) bool { return d.Groups[i].Group < d.Groups[j].Group })
	for _, tp := range trend {
		d.Trend = append(d.Trend, *tp)
	}
	sort.Slice(d.Trend, func(i, j int) bool { return d.Trend[i].Hour.Before(d.Trend[j].Hour) })
	for i := len(recs) - 1; i >= 0 && len(d.Recent) < recent; i-- {
		d.Recent = append(d.Recent, recs[i])
	}
	return d
}

// dashboardWindow is how far back the dashboard and exports look by default.
const dashboardWindow = 7 * 24 * time.Hour

func (s *Server) since(r *http.Request) time.Time {
	since := s.opt.Now().Add(-dashboardWindow)
	if v := r.URL.Query().Get("since"); v != "" {
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			since = t
		}
	}
	return since
}

const maxExport = 100000

func (s *Server) handleDashboard(w http.ResponseWriter, r *http.Request) {
	recs, err := s.opt.Store.List(s.since(r), maxExport)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "the result store cannot be read")
		return
	}
	writeJSON(w, Summarize(s.opt.Program.Policy.Name, recs, 20))
}

func (s *Server) handleExportJSON(w http.ResponseWriter, r *http.Request) {
	recs, err := s.opt.Store.List(s.since(r), maxExport)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "the result store cannot be read")
		return
	}
	if recs == nil {
		recs = []Record{}
	}
	w.Header().Set("Content-Disposition", `attachment; filename="readiness.json"`)
	writeJSON(w, recs)
}

// handleResult returns one stored result, for the agent page's view of it
// (/?result=ID) that the dashboard links to.
func (s *Server) handleResult(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	recs, err := s.opt.Store.List(time.Time{}, maxExport)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "the result store cannot be read")
		return
	}
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].ID == id {
			writeJSON(w, recs[i])
			return
		}
	}
	httpError(w, http.StatusNotFound, "no such result")
}

// csvCell keeps a spreadsheet from reading a cell as a formula.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// handleExportCSV writes one row per check and per call.
func (s *Server) handleExportCSV(w http.ResponseWriter, r *http.Request) {
	recs, err := s.opt.Store.List(s.since(r), maxExport)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "the result store cannot be read")
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="readiness.csv"`)
	cw := csv.NewWriter(w)
	cw.Write([]string{"at", "result", "group", "source", "verdict", "kind", "target", "label", "outcome", "error_code", "relay_protocol", "ms", "mos", "band", "rule", "line", "explanation"})
	for _, rec := range recs {
		at := rec.At.UTC().Format(time.RFC3339)
		for _, c := range rec.Checks {
			cw.Write([]string{at, rec.ID, csvCell(rec.Group), rec.Source, rec.Verdict, "check", c.Target, csvCell(c.Label), c.Outcome,
				strconv.Itoa(c.ErrorCode), c.RelayProtocol, strconv.FormatFloat(c.CandidateMs, 'f', 0, 64), "", "",
				csvCell(c.Decision.Rule), csvCell(c.Decision.Line), csvCell(c.Explanation)})
		}
		for _, c := range rec.Calls {
			outcome := "connected"
			if !c.Connected {
				outcome = "failed"
			}
			cw.Write([]string{at, rec.ID, csvCell(rec.Group), rec.Source, rec.Verdict, "call", c.Target, csvCell(c.Label), outcome,
				"", c.RelayProtocol, strconv.FormatFloat(c.ConnectMs, 'f', 0, 64), strconv.FormatFloat(c.MOS, 'f', 2, 64), c.Band,
				"", "", csvCell(c.Explanation)})
		}
	}
	cw.Flush()
}

type metrics struct {
	sessions prometheus.Counter
	results  *prometheus.CounterVec
	checks   *prometheus.CounterVec
	mos      *prometheus.HistogramVec
	refused  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sessions: prometheus.NewCounter(prometheus.CounterOpts{Name: "turnwall_readiness_sessions_total", Help: "Test sessions started by agents' browsers."}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "turnwall_readiness_results_total",
			Help: "Results received, by agents group and verdict."}, []string{"group", "verdict"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "turnwall_readiness_checks_total",
			Help: "ICE server checks, by agents group, target and outcome."}, []string{"group", "target", "outcome"}),
		mos: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "turnwall_readiness_call_mos",
			Help: "MOS of connected test calls, by agents group.", Buckets: []float64{1, 2, 3, 3.6, 4, 4.3, 4.5}}, []string{"group"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "turnwall_readiness_refused_total",
			Help: "Requests refused, by reason (rate, malformed, invalid)."}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{m.sessions, m.results, m.checks, m.mos, m.refused} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe counts a record. Labels come from the policy (group and target
// IDs), never from what the browser wrote.
func (m *metrics) observe(r Record) {
	m.results.WithLabelValues(r.Group, r.Verdict).Inc()
	for _, c := range r.Checks {
		m.checks.WithLabelValues(r.Group, c.Target, c.Outcome).Inc()
	}
	for _, c := range r.Calls {
		if c.Connected {
			m.mos.WithLabelValues(r.Group).Observe(c.MOS)
		}
	}
}
