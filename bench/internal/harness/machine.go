package harness

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
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

// CPUTimes returns the processor time the whole machine has spent busy (everything but idle and
// iowait) and in total since boot, summed over its cores, from /proc/stat; zeros when it cannot be
// read. Two readings give how busy the machine was in between.
func CPUTimes() (busy, total time.Duration) {
	b, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0
	}
	var sum, idle int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i == 7 { // steal: time the hypervisor gave to others, neither busy nor idle here
			continue
		}
		if i >= 8 { // guest times are already counted in user and nice
			break
		}
		sum += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	tick := time.Second / 100
	return time.Duration(sum-idle) * tick, time.Duration(sum) * tick
}
