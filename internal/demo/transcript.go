package demo

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// transcript prints the demo's steps: a numbered heading per step, "->" for what was called and
// "<-" for what came back. A nil writer prints nothing.
type transcript struct {
	w     io.Writer
	step  int
	total int
	start time.Time
}

func (t *transcript) heading(title string) {
	t.step++
	t.start = time.Now()
	if t.w != nil {
		fmt.Fprintf(t.w, "\n[%d/%d] %s\n", t.step, t.total, title)
	}
}

func (t *transcript) call(format string, args ...any) { t.line("  -> ", format, args...) }
func (t *transcript) got(format string, args ...any)  { t.line("  <- ", format, args...) }
func (t *transcript) note(format string, args ...any) { t.line("     ", format, args...) }

func (t *transcript) ok(format string, args ...any) {
	t.line("  ok ", format+" (%s)", append(args, time.Since(t.start).Round(time.Millisecond))...)
}

func (t *transcript) line(prefix, format string, args ...any) {
	if t.w == nil {
		return
	}
	msg := fmt.Sprintf(format, args...)
	for i, l := range strings.Split(msg, "\n") {
		if i > 0 {
			prefix = "     "
		}
		fmt.Fprintf(t.w, "%s%s\n", prefix, l)
	}
}
