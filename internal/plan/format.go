package plan

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// sig formats v with three significant digits, trailing zeros dropped ("6.4", "312", "0.333").
func sig(v float64) string {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	decimals := 2 - int(math.Floor(math.Log10(math.Abs(v))))
	if decimals < 0 {
		decimals = 0
	}
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// scaled picks the largest unit that keeps v at 1 or more.
func scaled(v float64, units []string, step float64) string {
	i := 0
	for i < len(units)-1 && math.Abs(v) >= step {
		v /= step
		i++
	}
	return sig(v) + " " + units[i]
}

// Rate formats bits per second: "312 kb/s", "6.4 Gb/s".
func Rate(bps float64) string {
	return scaled(bps, []string{"b/s", "kb/s", "Mb/s", "Gb/s", "Tb/s", "Pb/s"}, 1000)
}

// Bytes formats a size in decimal units: "259 kB", "1.8 PB".
func Bytes(b float64) string {
	return scaled(b, []string{"B", "kB", "MB", "GB", "TB", "PB", "EB"}, 1000)
}

// Percent formats a fraction: "40%", "99.5%", "0.1%".
func Percent(f float64) string { return sig(f*100) + "%" }

// Num formats a plain number with three significant digits.
func Num(v float64) string { return sig(v) }

// Count formats a whole number with thin groups ("3 000 000"); fractions keep three significant digits.
func Count(v float64) string {
	if math.Abs(v) < 1000 {
		return sig(v)
	}
	v = math.Round(v)
	s := strconv.FormatFloat(math.Abs(v), 'f', 0, 64)
	var b strings.Builder
	if v < 0 {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// WriteTable prints the plan's lines: name, formula with its numbers, result.
func WriteTable(w io.Writer, r Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, l := range r.Lines {
		fmt.Fprintf(tw, "%s\t%s = %s\n", l.Name, l.Formula, l.Value)
	}
	return tw.Flush()
}
