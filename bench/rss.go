package bench

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Memory is a process's resident memory from /proc/<pid>/status.
type Memory struct {
	// RSS is VmRSS, the resident set now, in bytes.
	RSS uint64
	// HWM is VmHWM, the largest resident set so far, in bytes.
	HWM uint64
}

// ReadMemory reads VmRSS and VmHWM of process pid (Linux only).
func ReadMemory(pid int) (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	defer f.Close()
	var m Memory
	var found int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		// "   12345 kB"
		fields := strings.Fields(val)
		if len(fields) != 2 || fields[1] != "kB" {
			return Memory{}, fmt.Errorf("/proc/%d/status: unexpected %s line %q", pid, key, val)
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("/proc/%d/status: %s: %w", pid, key, err)
		}
		if key == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.HWM = kb << 10
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return Memory{}, err
	}
	if found < 2 {
		return Memory{}, fmt.Errorf("/proc/%d/status has no VmRSS or VmHWM (a kernel thread or a zombie?)", pid)
	}
	return m, nil
}

// RSSStats summarizes the samples of one process.
type RSSStats struct {
	Samples        int
	Min, Max, Last uint64
	sum            float64
}

// Mean returns the mean VmRSS of the samples, in bytes.
func (s RSSStats) Mean() float64 {
	if s.Samples == 0 {
		return 0
	}
	return s.sum / float64(s.Samples)
}

func (s *RSSStats) add(rss uint64) {
	if s.Samples == 0 || rss < s.Min {
		s.Min = rss
	}
	s.Max = max(s.Max, rss)
	s.Last = rss
	s.sum += float64(rss)
	s.Samples++
}

// RSSSampler reads the VmRSS of a set of processes at a fixed interval
// until Stop.
type RSSSampler struct {
	pids  map[string]int
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	stats map[string]*RSSStats
	err   error
}

// SampleRSS starts sampling the processes in pids (name to pid) every
// interval, beginning now.
func SampleRSS(pids map[string]int, interval time.Duration) *RSSSampler {
	s := &RSSSampler{pids: pids, stop: make(chan struct{}), done: make(chan struct{}), stats: map[string]*RSSStats{}}
	for name := range pids {
		s.stats[name] = &RSSStats{}
	}
	go s.run(interval)
	return s
}

func (s *RSSSampler) run(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.sample()
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

func (s *RSSSampler) sample() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, pid := range s.pids {
		m, err := ReadMemory(pid)
		if err != nil {
			if s.err == nil {
				s.err = fmt.Errorf("%s: %w", name, err)
			}
			continue
		}
		s.stats[name].add(m.RSS)
	}
}

// Stop ends sampling, takes one last sample and returns the statistics
// by name, with the first read error, if any.
func (s *RSSSampler) Stop() (map[string]RSSStats, error) {
	close(s.stop)
	<-s.done
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]RSSStats, len(s.stats))
	for name, st := range s.stats {
		out[name] = *st
	}
	return out, s.err
}
