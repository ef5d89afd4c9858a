package harness

import (
	"fmt"
	"os"
	"strings"
)

// CPUModel is the processor's model name from /proc/cpuinfo.
func CPUModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// MemTotal is the machine's memory, in GiB.
func MemTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	var kb float64
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			fmt.Sscan(v, &kb)
		}
	}
	return fmt.Sprintf("%.0f GiB", kb/1048576)
}

// LoadAvg is the 1, 5 and 15 minute load averages.
func LoadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
