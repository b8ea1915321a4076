package rules

import (
	"reflect"
	"slices"
	"strings"

	"github.com/prometheus/common/model"

	"github.com/breakwater/breakwater/internal/names"
)

// durationPattern is what model.ParseDuration accepts.
const durationPattern = `^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$`

// ValuesSchema is the JSON schema of the configuration as the Helm chart's
// `rules` values (without prometheusRule, which the chart names itself):
// Helm then rejects a misspelt key or a mistyped value as Load does.
// Ranges and cross-field rules stay Validate's.
func ValuesSchema() map[string]any {
	s := schemaOf(reflect.TypeOf(Config{}))
	props := s["properties"].(map[string]any)
	delete(props, "prometheusRule")
	s["required"] = slices.DeleteFunc(s["required"].([]string), func(k string) bool { return k == "prometheusRule" })
	// Names an alert, a label the pack does not set itself.
	props["disabled"].(map[string]any)["propertyNames"] = map[string]any{"enum": names.Alerts}
	for key, own := range map[string][]string{"additionalRuleLabels": ownLabels, "additionalRuleAnnotations": ownAnnotations} {
		props[key].(map[string]any)["propertyNames"] = map[string]any{"pattern": labelNamePattern, "not": map[string]any{"enum": own}}
	}
	return s
}

// labelNamePattern is what model.LegacyValidation accepts as a label name.
const labelNamePattern = `^[a-zA-Z_][a-zA-Z0-9_]*$`

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
		var required []string
		addFields(t, props, &required)
		s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if len(required) > 0 {
			slices.Sort(required)
			s["required"] = required
		}
		return s
	}
	panic("rules: no schema for " + t.String())
}

// addFields adds the JSON fields of struct t, inlined embedded structs
// included. Fields are required but for lists, maps and optional ones: a
// values file or --set that nulls one (Helm then drops the key) is an
// error, not a template that renders nothing.
func addFields(t reflect.Type, props map[string]any, required *[]string) {
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && strings.Contains(opts, "inline") {
			addFields(f.Type, props, required)
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		props[name] = schemaOf(f.Type)
		switch f.Type.Kind() {
		case reflect.Slice, reflect.Map, reflect.Pointer:
		default:
			if !strings.Contains(opts, "omitempty") {
				*required = append(*required, name)
			}
		}
	}
}
