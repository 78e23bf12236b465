package ui

import (
	"fmt"
	"strconv"
)

// Series is one data series of a bar chart.
type Series struct {
	Name   string
	Class  string // CSS class of its bars (colour)
	Values []int64
}

// Chart is a bar chart drawn on the server as SVG, readable without JavaScript, with
// its numbers as a table beside it.
type Chart struct {
	ID     string
	Title  string
	Labels []string // one per bucket
	Series []Series
	// LabelEvery: label every nth bucket on the axis (all in the table).
	LabelEvery int
}

const (
	chartW, chartH = 720, 180
	chartPad       = 28
)

func (c Chart) max() int64 {
	var m int64 = 1
	for _, s := range c.Series {
		for _, v := range s.Values {
			m = max(m, v)
		}
	}
	return m
}

// Bar is one rectangle of the SVG.
type Bar struct {
	X, Y, W, H string
	Class      string
	Title      string
}

// Bars lays the series out side by side in each bucket.
func (c Chart) Bars() []Bar {
	n := len(c.Labels)
	if n == 0 {
		return nil
	}
	slot := float64(chartW-chartPad) / float64(n)
	w := slot * 0.8 / float64(max(len(c.Series), 1))
	m := float64(c.max())
	var out []Bar
	for si, s := range c.Series {
		for i, v := range s.Values {
			h := float64(chartH-chartPad) * float64(v) / m
			x := float64(chartPad) + float64(i)*slot + slot*0.1 + float64(si)*w
			out = append(out, Bar{X: f(x), Y: f(float64(chartH-chartPad) - h), W: f(w), H: f(h), Class: s.Class,
				Title: fmt.Sprintf("%s %s: %d", c.Labels[i], s.Name, v)})
		}
	}
	return out
}

// AxisLabel is one label under the bars.
type AxisLabel struct{ X, Text string }

// Axis labels every LabelEvery-th bucket.
func (c Chart) Axis() []AxisLabel {
	n := len(c.Labels)
	every := max(c.LabelEvery, 1)
	slot := float64(chartW-chartPad) / float64(max(n, 1))
	var out []AxisLabel
	for i := 0; i < n; i += every {
		out = append(out, AxisLabel{X: f(float64(chartPad) + float64(i)*slot + slot/2), Text: c.Labels[i]})
	}
	return out
}

// MaxLabel is the y axis's top value.
func (c Chart) MaxLabel() string { return strconv.FormatInt(c.max(), 10) }

// Total sums a series.
func (s Series) Total() int64 {
	var t int64
	for _, v := range s.Values {
		t += v
	}
	return t
}

func f(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// I64 formats an int64.
func I64(v int64) string { return strconv.FormatInt(v, 10) }
