// Package identity maps cgroups to the containers that own them and to the
// identity labels every per-container series carries.
package identity

// LabelNames are the identity labels of the contract, in the order
// Identity.LabelValues returns them.
var LabelNames = []string{"container_id", "name", "image", "namespace", "pod", "container"}

// Identity is who a container is. Fields the runtime does not know (for
// example the Kubernetes ones of a plain Docker container) are empty.
type Identity struct {
	ContainerID string // 64-hex runtime id
	Name        string // runtime name, Docker's without the leading slash
	Image       string
	Namespace   string // io.kubernetes.pod.namespace
	Pod         string // io.kubernetes.pod.name
	Container   string // io.kubernetes.container.name
	// Sandbox is a pod's sandbox (pause) container: the runtime's holder
	// of the pod's namespaces, not a workload. It has no series.
	Sandbox bool
}

// LabelValues returns the values for LabelNames.
func (i Identity) LabelValues() []string {
	return []string{i.ContainerID, i.Name, i.Image, i.Namespace, i.Pod, i.Container}
}
