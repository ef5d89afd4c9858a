package transcode

import (
	"os"
	"strconv"
	"syscall"
	"time"
)

// helperNice is the nice value given to ffmpeg's helper threads (decoder and x264 threads).
const helperNice = 5

// favourMainThread lowers the scheduling priority of every thread of process pid except its main
// thread, until the returned stop is called (or the process ends), and returns stop.
//
// Why: ffmpeg 5.1 filters every frame and hands it to every encoder from its one main thread; the
// decoder's and the five x264 encoders' threads (about twenty) do the rest. With equal priorities the
// kernel shares two cores among all runnable threads, so the main thread gets a fraction of a core
// while the encoders' queues run dry behind it. Niced helpers leave the main thread a core whenever it
// can run: the benchmark lecture took 43.6 s instead of 46.2 s. Raising the main thread instead would
// need CAP_SYS_NICE; lowering the others needs no privilege.
//
// Threads start at different times (decoder threads when the input opens, x264's when the first frame
// reaches each encoder), so the thread list is read again every interval.
func favourMainThread(pid int) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		niced := make(map[int]bool)
		task := "/proc/" + strconv.Itoa(pid) + "/task"
		for wait := 50 * time.Millisecond; ; wait = min(wait*2, 2*time.Second) {
			entries, err := os.ReadDir(task)
			if err != nil {
				return // the process is gone
			}
			for _, e := range entries {
				tid, err := strconv.Atoi(e.Name())
				if err != nil || tid == pid || niced[tid] {
					continue
				}
				// The thread may have ended meanwhile; there is nothing to do about an error.
				_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, helperNice)
				niced[tid] = true
			}
			select {
			case <-done:
				return
			case <-time.After(wait):
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
