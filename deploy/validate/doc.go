// Package validate checks breakwater's deployment manifests: the plain
// Kubernetes objects, the rendered Helm chart and the compose stack. It is a
// module of its own so that Helm and the Kubernetes API types stay out of
// the exporter's go.mod.
package validate
