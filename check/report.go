package check

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary counts results.
type Summary struct {
	Passed int `json:"passed"`
	Failed int `json:"failed"`
	Errors int `json:"errors"`
}

// Summarize counts passes, failures and probes that could not run.
func Summarize(rs []Result) Summary {
	var s Summary
	for _, r := range rs {
		switch {
		case r.Err != nil:
			s.Errors++
		case r.Pass:
			s.Passed++
		default:
			s.Failed++
		}
	}
	return s
}

func status(r Result) string {
	switch {
	case r.Err != nil:
		return "ERROR"
	case r.Pass:
		return "pass"
	}
	return "FAIL"
}

func latency(r Result) string {
	if !r.Reached {
		return "-"
	}
	return fmt.Sprintf("%.3fms", float64(r.Latency)/float64(time.Millisecond))
}

func detail(r Result) string {
	if r.Err != nil {
		return r.Err.Error()
	}
	if !r.Reached {
		return r.Cause
	}
	return measures(r)
}

// measures lists the measured bounds, the failed ones marked.
func measures(r Result) string {
	var parts []string
	for _, m := range r.Measures {
		s := m.String()
		if !m.Pass {
			s = "FAILED " + s
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func target(r Result) string {
	if r.To == "" || r.To == r.Addr.String() {
		return r.Addr.String()
	}
	return r.To + " (" + r.Addr.String() + ")"
}

// WriteTable prints one line per expectation and a summary line.
func WriteTable(w io.Writer, rs []Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESULT\tFROM\tTO\tPROTO\tEXPECT\tLATENCY\tDETAIL")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", status(r), r.From, target(r), r.Proto, r.Want, latency(r), detail(r))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	s := Summarize(rs)
	_, err := fmt.Fprintf(w, "%d passed, %d failed, %d errors\n", s.Passed, s.Failed, s.Errors)
	return err
}

// JSONResult is one result as written by WriteJSON.
type JSONResult struct {
	Result    string  `json:"result"` // pass, fail, error
	From      string  `json:"from"`
	To        string  `json:"to"`
	Addr      string  `json:"addr"`
	Proto     string  `json:"proto"`
	Expect    string  `json:"expect"`
	Reached   bool    `json:"reached"`
	LatencyMS float64 `json:"latency_ms,omitempty"`
	Cause     string  `json:"cause,omitempty"`
	Error     string  `json:"error,omitempty"`
	// Measures are the expectation's bounds with what was measured.
	Measures []JSONMeasure `json:"measures,omitempty"`
}

// JSONMeasure is one measured bound: metric latency (seconds), loss (a
// fraction) or rate (bits per second).
type JSONMeasure struct {
	Metric string  `json:"metric"`
	Bound  string  `json:"bound"`
	Got    float64 `json:"got"`
	Pass   bool    `json:"pass"`
}

// JSONReport is the document WriteJSON writes.
type JSONReport struct {
	Results []JSONResult `json:"results"`
	Summary
}

// Report builds the JSON document of the results.
func Report(rs []Result) JSONReport {
	rep := JSONReport{Results: make([]JSONResult, 0, len(rs)), Summary: Summarize(rs)}
	for _, r := range rs {
		j := JSONResult{
			Result: strings.ToLower(status(r)), From: r.From, To: r.To, Addr: r.Addr.String(),
			Proto: r.Proto.String(), Expect: r.Want.String(), Reached: r.Reached, Cause: r.Cause,
		}
		if r.To == "" {
			j.To = j.Addr
		}
		if r.Reached {
			j.LatencyMS = float64(r.Latency) / float64(time.Millisecond)
		}
		if r.Err != nil {
			j.Error = r.Err.Error()
		}
		for _, m := range r.Measures {
			j.Measures = append(j.Measures, JSONMeasure{Metric: m.Metric, Bound: m.Text, Got: m.Got, Pass: m.Pass})
		}
		rep.Results = append(rep.Results, j)
	}
	return rep
}

// WriteJSON writes the results as one JSON document.
func WriteJSON(w io.Writer, rs []Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(Report(rs))
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Class   string        `xml:"classname,attr"`
	Name    string        `xml:"name,attr"`
	Time    string        `xml:"time,attr"`
	Failure *junitMessage `xml:"failure,omitempty"`
	Error   *junitMessage `xml:"error,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// CaseName is how a result is named in JUnit and elsewhere:
// "FROM -> TO PROTO EXPECT".
func CaseName(r Result) string {
	name := fmt.Sprintf("%s -> %s %s %s", r.From, target(r), r.Proto, r.Want)
	for _, b := range r.Bounds {
		name += " " + b.String()
	}
	return name
}

// WriteJUnit writes the results as a JUnit XML report, one test case per
// expectation, for CI systems.
func WriteJUnit(w io.Writer, suite string, rs []Result) error {
	s := Summarize(rs)
	js := junitSuite{Name: suite, Tests: len(rs), Failures: s.Failed, Errors: s.Errors}
	for _, r := range rs {
		c := junitCase{Class: suite + "." + r.From, Name: CaseName(r), Time: fmt.Sprintf("%.6f", r.Latency.Seconds())}
		switch {
		case r.Err != nil:
			c.Error = &junitMessage{Message: r.Err.Error(), Text: r.Err.Error()}
		case !r.Pass:
			msg := "reached"
			switch {
			case !r.Reached:
				msg = "not reached: " + r.Cause
			case len(r.Bounds) > 0:
				msg = "out of bounds: " + measures(r)
			}
			c.Failure = &junitMessage{Message: msg, Text: fmt.Sprintf("expected %s, %s", r.Want, msg)}
		}
		js.Cases = append(js.Cases, c)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSuite{js}}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
