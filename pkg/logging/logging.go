// Package logging writes operator logs in nats-server's layout
// ("[pid] 2006/01/02 15:04:05.000000 [INF] text") so that existing log
// parsing keeps working. A Logger is passed to each component; there is no
// global logger.
package logging

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Logger is safe for concurrent use. Debug and Trace may be switched at run
// time (config reload).
type Logger struct {
	mu      sync.Mutex
	w       io.Writer
	prefix  string
	logtime bool
	debug   atomic.Bool
	trace   atomic.Bool
	closer  io.Closer
}

// Options select the output and levels.
type Options struct {
	File    string // empty: standard error
	Logtime bool
	Debug   bool
	Trace   bool
	Name    string // shown after the pid, e.g. "frontdoor"
}

// New opens the log destination.
func New(o Options) (*Logger, error) {
	l := &Logger{w: os.Stderr, logtime: o.Logtime}
	if o.File != "" {
		f, err := os.OpenFile(o.File, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			return nil, fmt.Errorf("log_file %q: %w", o.File, err)
		}
		l.w, l.closer = f, f
	}
	l.prefix = fmt.Sprintf("[%d] ", os.Getpid())
	if o.Name != "" {
		l.prefix = fmt.Sprintf("[%d] [%s] ", os.Getpid(), o.Name)
	}
	l.SetLevels(o.Debug, o.Trace)
	return l, nil
}

// NewWriter logs to w (tests).
func NewWriter(w io.Writer, debug bool) *Logger {
	l := &Logger{w: w, logtime: true}
	l.debug.Store(debug)
	return l
}

// Discard drops everything.
func Discard() *Logger { return NewWriter(io.Discard, false) }

// SetLevels switches debug and trace logging.
func (l *Logger) SetLevels(debug, trace bool) {
	l.debug.Store(debug || trace)
	l.trace.Store(trace)
}

// DebugOn reports whether debug lines are written.
func (l *Logger) DebugOn() bool { return l.debug.Load() }

// TraceOn reports whether protocol traces are written.
func (l *Logger) TraceOn() bool { return l.trace.Load() }

func (l *Logger) write(level, format string, args []any) {
	var ts string
	if l.logtime {
		ts = time.Now().Format("2006/01/02 15:04:05.000000 ")
	}
	line := fmt.Sprintf(format, args...)
	l.mu.Lock()
	fmt.Fprintf(l.w, "%s%s[%s] %s\n", l.prefix, ts, level, line)
	l.mu.Unlock()
}

func (l *Logger) Infof(format string, args ...any)  { l.write("INF", format, args) }
func (l *Logger) Warnf(format string, args ...any)  { l.write("WRN", format, args) }
func (l *Logger) Errorf(format string, args ...any) { l.write("ERR", format, args) }
func (l *Logger) Fatalf(format string, args ...any) { l.write("FTL", format, args) }

func (l *Logger) Debugf(format string, args ...any) {
	if l.debug.Load() {
		l.write("DBG", format, args)
	}
}

func (l *Logger) Tracef(format string, args ...any) {
	if l.trace.Load() {
		l.write("TRC", format, args)
	}
}

// Close closes a log file.
func (l *Logger) Close() error {
	if l.closer != nil {
		return l.closer.Close()
	}
	return nil
}
