package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// member is one node as Patroni's GET /cluster shows it.
type member struct {
	Name     string `json:"name"`
	Place    string `json:"role"`  // leader, sync_standby, replica (Patroni's "role"; not a staff role)
	State    string `json:"state"` // running, streaming, starting, stopped, …
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Timeline int    `json:"timeline"`
}

func (m member) String() string {
	return fmt.Sprintf("%s=%s/%s(tl %d)", m.Name, m.Place, m.State, m.Timeline)
}

// patroni asks the nodes' REST APIs, in turn, for the cluster's members: any node
// that answers knows them all (from etcd).
type patroni struct {
	urls   []string
	client *http.Client
}

func (p *patroni) members(ctx context.Context) ([]member, error) {
	var errs []error
	for _, u := range p.urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"/cluster", nil)
		if err != nil {
			return nil, err
		}
		resp, err := p.client.Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var c struct {
			Members []member `json:"members"`
		}
		err = json.NewDecoder(resp.Body).Decode(&c)
		resp.Body.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s/cluster: %w", u, err))
			continue
		}
		return c.Members, nil
	}
	return nil, errors.Join(errs...)
}

// healthy reports the leader when the cluster has a running leader and a running
// synchronous standby.
func healthy(ms []member) (leader member, ok bool) {
	var sync bool
	for _, m := range ms {
		switch {
		case m.Place == "leader" && m.State == "running":
			leader, ok = m, true
		case m.Place == "sync_standby" && (m.State == "running" || m.State == "streaming"):
			sync = true
		}
	}
	return leader, ok && sync
}

// leaderOf returns the running leader, if any.
func leaderOf(ms []member) (member, bool) {
	for _, m := range ms {
		if m.Place == "leader" && m.State == "running" {
			return m, true
		}
	}
	return member{}, false
}

// waitCluster polls until the cluster is healthy (a leader and, with needSync, a
// synchronous standby) or timeout passes.
func (p *patroni) waitCluster(ctx context.Context, timeout time.Duration, needSync bool) (member, []member, error) {
	deadline := time.Now().Add(timeout)
	var last []member
	var lastErr error
	for time.Now().Before(deadline) {
		ms, err := p.members(ctx)
		if err == nil {
			last = ms
			if l, ok := healthy(ms); ok {
				return l, ms, nil
			}
			if l, ok := leaderOf(ms); ok && !needSync {
				return l, ms, nil
			}
		}
		lastErr = err
		if !sleep(ctx, 250*time.Millisecond) {
			return member{}, last, ctx.Err()
		}
	}
	return member{}, last, fmt.Errorf("no healthy leader after %s (members %v, last error %v)", timeout, last, lastErr)
}

// postmasterPID reads the postmaster's PID from a data directory, and checks that the
// process is a postgres of that directory (a stale file may name another process).
func postmasterPID(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return 0, fmt.Errorf("%s/postmaster.pid: %w", dataDir, err)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return 0, fmt.Errorf("postmaster %d of %s: %w", pid, dataDir, err)
	}
	if !strings.Contains(string(cmdline), dataDir) {
		return 0, fmt.Errorf("process %d is not the postmaster of %s", pid, dataDir)
	}
	return pid, nil
}

// killPostmaster sends SIGKILL to the postmaster of dataDir: the primary dies without
// a shutdown checkpoint, as on a crash.
func killPostmaster(dataDir string) (int, error) {
	pid, err := postmasterPID(dataDir)
	if err != nil {
		return 0, err
	}
	return pid, syscall.Kill(pid, syscall.SIGKILL)
}

// freezePostmaster stops (SIGSTOP) the postmaster of dataDir and every child of it:
// a primary that hangs without dying, as on a stalled disk or a frozen VM. Its TCP
// connections stay open (the kernel still answers), but nothing answers on them. It
// returns the stopped PIDs for thaw.
func freezePostmaster(dataDir string) ([]int, error) {
	pid, err := postmasterPID(dataDir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return nil, err
	}
	pids := []int{pid}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			child, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			if syscall.Kill(child, syscall.SIGSTOP) == nil {
				pids = append(pids, child)
			}
		}
	}
	return pids, nil
}

// thaw continues (SIGCONT) the processes freezePostmaster stopped.
func thaw(pids []int) {
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGCONT)
	}
}
