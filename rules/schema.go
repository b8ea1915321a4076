package rules

import (
	"reflect"
	"strings"

	"github.com/prometheus/common/model"
)

// durationPattern is what model.ParseDuration accepts.
const durationPattern = `^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$`

// ValuesSchema is the JSON schema of the configuration as the Helm chart's
// `rules` values (without prometheusRule, which the chart names itself):
// Helm then rejects a misspelt key or a mistyped value as Load does.
// Ranges and cross-field rules stay Validate's.
func ValuesSchema() map[string]any {
	s := schemaOf(reflect.TypeOf(Config{}))
	delete(s["properties"].(map[string]any), "prometheusRule")
	return s
}

func schemaOf(t reflect.Type) map[string]any {
	switch {
	case t == reflect.TypeOf(model.Duration(0)):
		return map[string]any{"type": "string", "pattern": durationPattern}
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Bool:
		return map[string]any{"type": []string{"boolean", "null"}}
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Int:
		return map[string]any{"type": "integer"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		// null removes a default entry, as in Load.
		item := schemaOf(t.Elem())
		if t.Elem().Kind() == reflect.Struct {
			item["type"] = []string{"object", "null"}
		}
		return map[string]any{"type": "object", "additionalProperties": item}
	case reflect.Struct:
		props := map[string]any{}
		addFields(t, props)
		return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	}
	panic("rules: no schema for " + t.String())
}

// addFields adds the JSON fields of struct t, inlined embedded structs included.
func addFields(t reflect.Type, props map[string]any) {
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && strings.Contains(opts, "inline") {
			addFields(f.Type, props)
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		props[name] = schemaOf(f.Type)
	}
}
