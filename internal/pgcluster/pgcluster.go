// Package pgcluster starts a private PostgreSQL cluster from the server binaries on
// the machine: initdb and pg_ctl into a folder, loopback only, a port of its own. `issuer
// dev` keeps one under .data/; tests start a throwaway one per test binary. As root it
// runs the server as the `postgres` system user, since initdb refuses root.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Cluster is a running private PostgreSQL server.
type Cluster struct {
	Dir  string // holds data/, log and the socket
	Port int
	// Shared is true when Start found the cluster already running; the caller that
	// started it owns stopping it.
	Shared bool
	bin    string
	cred   *syscall.Credential
	uid    int
	gid    int
}

// Options tune a cluster. Durable=false turns fsync off (tests only).
type Options struct {
	Dir     string
	Durable bool
	// Port to listen on; 0 picks a free one (and a restarted dev cluster keeps the one
	// it had, recorded in Dir/port).
	Port int
	// Settings are server settings, "name=value" each, appended to postgresql.conf
	// when the cluster is created (say archive_mode=on and an archive_command). They
	// live in the data directory, so a backup of it carries them.
	Settings []string
}

// FindBinDir locates initdb/pg_ctl: PATH first, then Debian's /usr/lib/postgresql/N/bin,
// the newest version.
func FindBinDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("pgcluster: PostgreSQL server binaries (initdb, pg_ctl) not found; run scripts/setup (Debian: apt-get install -y postgresql) or set DATABASE_URL")
}

func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Start initialises Dir (if it has no cluster yet) and starts the server.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	bin, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	if o.Dir, err = filepath.Abs(o.Dir); err != nil {
		return nil, err
	}
	c := &Cluster{Dir: o.Dir, bin: bin, uid: -1, gid: -1}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, errors.New("pgcluster: running as root needs the `postgres` system user (apt-get install -y postgresql creates it)")
		}
		c.uid, _ = strconv.Atoi(u.Uid)
		c.gid, _ = strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(c.uid), Gid: uint32(c.gid)}
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	if c.cred != nil {
		if err := os.Chown(o.Dir, c.uid, c.gid); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(o.Dir, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		args := []string{"-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8"}
		if !o.Durable {
			args = append(args, "--no-sync")
		}
		if out, err := c.cmd(ctx, "initdb", args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("pgcluster: initdb: %v\n%s", err, out)
		}
		if err := appendSettings(filepath.Join(data, "postgresql.conf"), o.Settings); err != nil {
			return nil, err
		}
	}
	// A cluster already running from this folder (say `issuer dev` in another
	// terminal, with a CLI command now) is shared, not restarted.
	if b, err := os.ReadFile(filepath.Join(o.Dir, "port")); err == nil && c.cmd(ctx, "pg_ctl", "-D", data, "status").Run() == nil {
		c.Port, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		c.Shared = true
		return c, nil
	}
	c.Port = o.Port
	if c.Port == 0 {
		if b, err := os.ReadFile(filepath.Join(o.Dir, "port")); err == nil {
			c.Port, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if c.Port == 0 || !portFree(c.Port) {
			if c.Port, err = freePort(); err != nil {
				return nil, err
			}
		}
	}
	if err := c.start(ctx, o.Durable); err != nil {
		return nil, err
	}
	_ = os.WriteFile(filepath.Join(o.Dir, "port"), []byte(strconv.Itoa(c.Port)+"\n"), 0o600)
	return c, nil
}

func (c *Cluster) start(ctx context.Context, durable bool) error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200", c.Port, c.Dir)
	if !durable {
		opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	}
	data := filepath.Join(c.Dir, "data")
	// A cluster killed without a clean stop leaves a stale pid file; pg_ctl copes.
	out, err := c.cmd(ctx, "pg_ctl", "-D", data, "-l", filepath.Join(c.Dir, "log"), "-w", "-t", "60", "-o", opts, "start").CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(c.Dir, "log"))
		return fmt.Errorf("pgcluster: pg_ctl start: %v\n%s\n%s", err, out, tail(log, 2000))
	}
	return nil
}

// Restart starts a stopped cluster again on the same port (tests of outages use it).
func (c *Cluster) Restart(ctx context.Context) error { return c.start(ctx, false) }

// Stop shuts the server down (fast mode: running transactions are rolled back).
func (c *Cluster) Stop() error {
	out, err := c.cmd(context.Background(), "pg_ctl", "-D", filepath.Join(c.Dir, "data"), "-m", "fast", "-w", "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgcluster: pg_ctl stop: %v\n%s", err, out)
	}
	return nil
}

// appendSettings writes "name=value" settings at the end of a postgresql.conf, each
// value quoted for it.
func appendSettings(conf string, settings []string) error {
	if len(settings) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("\n# pgcluster Options.Settings\n")
	for _, kv := range settings {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(name) == "" || strings.ContainsAny(value, "\n\r") {
			return fmt.Errorf("pgcluster: setting %q is not name=value", kv)
		}
		fmt.Fprintf(&b, "%s = '%s'\n", strings.TrimSpace(name), strings.ReplaceAll(value, "'", "''"))
	}
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Command runs a program (a path, or a name looked up on PATH) as the server's owner:
// the postgres system user when the process is root, for tools that read or write
// the data directory, such as pgbackrest or pg_basebackup.
func (c *Cluster) Command(ctx context.Context, program string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, program, args...)
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd
}

// Chown gives path to the server's owner (a no-op unless the process is root), so
// the server and the tools Command runs may use a folder made for them.
func (c *Cluster) Chown(path string) error {
	if c.cred == nil {
		return nil
	}
	return os.Chown(path, c.uid, c.gid)
}

// URL is a connection URL for database name db.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
}

func (c *Cluster) cmd(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd
}

// MkdirTemp makes a fresh folder a postgres-run server can use (t.TempDir's parent is
// root-only 0700, which the postgres user can't enter).
func MkdirTemp(prefix string) (string, error) {
	return os.MkdirTemp("", prefix)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// WaitReady is a small helper for callers that need the server accepting connections.
func WaitReady(ctx context.Context, ping func(context.Context) error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := ping(ctx)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Freeze stops (SIGSTOP) the server's postmaster and every process it started, as a
// hung primary is (a stalled disk, a frozen VM): connections stay open and nothing
// answers; new connections are accepted by the kernel and then hang. thaw continues
// them (SIGCONT). Tests of deadlines use it; call thaw even when the test fails.
func (c *Cluster) Freeze() (thaw func() error, err error) {
	b, err := os.ReadFile(filepath.Join(c.Dir, "data", "postmaster.pid"))
	if err != nil {
		return nil, fmt.Errorf("pgcluster: freeze: %w", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pm, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return nil, fmt.Errorf("pgcluster: freeze: postmaster.pid: %w", err)
	}
	// The postmaster first, so it starts nothing new while its children are stopped.
	pids := []int{pm}
	if err := syscall.Kill(pm, syscall.SIGSTOP); err != nil {
		return nil, fmt.Errorf("pgcluster: freeze: %w", err)
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces, so read after the last ')'.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pm) && syscall.Kill(pid, syscall.SIGSTOP) == nil {
			pids = append(pids, pid)
		}
	}
	return func() error {
		var errs []error
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}, nil
}
