package main

import (
	"context"
	"log/slog"
	"strings"

	"github.com/alecthomas/kingpin/v2"
)

// usageTemplate is kingpin's default help with a subcommand's own flags
// first: `breakwater profile --help` leads with --image, then the server's
// flags, which every command accepts, as "Global flags".
var usageTemplate = func() string {
	const flags = `{{if .Context.Flags -}}
Flags:
{{.Context.Flags|FlagsToTwoColumns|FormatTwoColumns}}
{{end -}}
`
	if !strings.Contains(kingpin.DefaultUsageTemplate, flags) {
		panic("kingpin's default usage template changed: adapt usageTemplate") // caught by TestHelp
	}
	return strings.Replace(kingpin.DefaultUsageTemplate, flags, `{{if and .Context.SelectedCommand (not .Context.SelectedCommand.Default) -}}
{{if .Context.SelectedCommand.Flags -}}
Flags of {{.Context.SelectedCommand.FullCommand}}:
{{.Context.SelectedCommand.Flags|FlagsToTwoColumns|FormatTwoColumns}}
{{end -}}
{{if .App.Flags -}}
Global flags:
{{.App.Flags|FlagsToTwoColumns|FormatTwoColumns}}
{{end -}}
{{else -}}
`+flags+`{{end -}}
`, 1)
}()

// plainErrors logs an error attribute as its message. Some libraries' errors
// (pkg/errors, which the Docker client wraps with) print their stack under
// the %+v that the log handlers use; a log line is one line.
type plainErrors struct{ slog.Handler }

func (h plainErrors) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(plainAttr(a))
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h plainErrors) WithAttrs(as []slog.Attr) slog.Handler {
	plain := make([]slog.Attr, len(as))
	for i, a := range as {
		plain[i] = plainAttr(a)
	}
	return plainErrors{h.Handler.WithAttrs(plain)}
}

func (h plainErrors) WithGroup(name string) slog.Handler {
	return plainErrors{h.Handler.WithGroup(name)}
}

func plainAttr(a slog.Attr) slog.Attr {
	if err, ok := a.Value.Any().(error); ok && a.Value.Kind() == slog.KindAny && err != nil {
		return slog.String(a.Key, err.Error())
	}
	return a
}
