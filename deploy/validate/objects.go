package validate

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Object is one decoded manifest: its kind and the typed value.
type Object struct {
	GVK  schema.GroupVersionKind
	Name string
	Obj  any
}

// kinds are the only objects breakwater ships; anything else is a mistake.
var kinds = map[schema.GroupVersionKind]func() any{
	appsv1.SchemeGroupVersion.WithKind("DaemonSet"):            func() any { return new(appsv1.DaemonSet) },
	corev1.SchemeGroupVersion.WithKind("Namespace"):            func() any { return new(corev1.Namespace) },
	corev1.SchemeGroupVersion.WithKind("Service"):              func() any { return new(corev1.Service) },
	corev1.SchemeGroupVersion.WithKind("ServiceAccount"):       func() any { return new(corev1.ServiceAccount) },
	corev1.SchemeGroupVersion.WithKind("Secret"):               func() any { return new(corev1.Secret) },
	corev1.SchemeGroupVersion.WithKind("ConfigMap"):            func() any { return new(corev1.ConfigMap) },
	monitoringv1.SchemeGroupVersion.WithKind("ServiceMonitor"): func() any { return new(monitoringv1.ServiceMonitor) },
	monitoringv1.SchemeGroupVersion.WithKind("PodMonitor"):     func() any { return new(monitoringv1.PodMonitor) },
	monitoringv1.SchemeGroupVersion.WithKind("PrometheusRule"): func() any { return new(monitoringv1.PrometheusRule) },
	rbacv1.SchemeGroupVersion.WithKind("Role"):                 func() any { return new(rbacv1.Role) },
	rbacv1.SchemeGroupVersion.WithKind("RoleBinding"):          func() any { return new(rbacv1.RoleBinding) },
}

// Decode splits a multi-document YAML stream and strictly decodes every
// document into its Kubernetes API type: an unknown or duplicated field, a
// wrong value type or an unknown kind is an error.
func Decode(data []byte) ([]Object, error) {
	r := utilyaml.NewYAMLReader(bufioReader(data))
	var out []Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return nil, err
		}
		gv, err := schema.ParseGroupVersion(meta.APIVersion)
		if err != nil {
			return nil, err
		}
		gvk := gv.WithKind(meta.Kind)
		newObj, ok := kinds[gvk]
		if !ok {
			return nil, fmt.Errorf("%s %q: not a kind breakwater ships", gvk, meta.Metadata.Name)
		}
		obj := newObj()
		if err := UnmarshalStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("%s %q: %w", gvk.Kind, meta.Metadata.Name, err)
		}
		out = append(out, Object{GVK: gvk, Name: meta.Metadata.Name, Obj: obj})
	}
}

// UnmarshalStrict decodes YAML the way the API server's strict field
// validation does: duplicate keys, unknown fields and fields whose case
// differs from the API's (encoding/json would accept hostPid for hostPID)
// are errors.
func UnmarshalStrict(doc []byte, obj any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(j, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// Only returns the one object of type T in objs.
func Only[T any](objs []Object) (T, error) {
	var found []T
	for _, o := range objs {
		if v, ok := o.Obj.(T); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		var zero T
		return zero, fmt.Errorf("want one %T, have %d", zero, len(found))
	}
	return found[0], nil
}
