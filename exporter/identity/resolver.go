package identity

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	cerrdefs "github.com/containerd/errdefs"
	dockerclient "github.com/docker/docker/client"
	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The CRI labels kubelet puts on every container it creates.
const (
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodName       = "io.kubernetes.pod.name"
	LabelContainerName = "io.kubernetes.container.name"
)

const (
	// lookupTimeout bounds one Resolve: a scrape must not hang on a runtime.
	lookupTimeout = 2 * time.Second
	// missRetry is how long an unknown id is answered from the cache before
	// the runtimes are asked again: long enough that a scrape of many
	// unknown cgroups does not hammer them, short enough that names appear
	// within a scrape or two once the runtime knows the container.
	missRetry = 5 * time.Second
	// downRetry is how long a runtime that failed (not "not found", but
	// unreachable or timing out) is skipped, so that a dead engine costs one
	// timeout per interval instead of one per container.
	downRetry = 3 * time.Second
	// criNamespace is containerd's namespace for containers kubelet creates.
	criNamespace = "k8s.io"
)

// Options say where the container runtimes listen.
type Options struct {
	// DockerHost is the Docker engine's address; empty means
	// unix:///var/run/docker.sock.
	DockerHost string
	// CRIEndpoint is containerd's socket, asked for containers Docker does
	// not know (Kubernetes with containerd). Empty means
	// /run/containerd/containerd.sock; a missing socket is not an error.
	CRIEndpoint string
}

// Resolver answers who a container is, from a cache filled by asking the
// Docker engine and then containerd. It is shared by every collector so that
// all series of one container carry the same labels.
type Resolver struct {
	logger *slog.Logger
	docker *dockerclient.Client // nil if the client could not be built
	cri    containersapi.ContainersClient
	group  singleflight.Group
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]entry
	down  map[string]time.Time // backend -> skip until
}

type entry struct {
	id      Identity
	known   bool
	retryAt time.Time // for unknown ids
}

// NewResolver builds a resolver. Runtimes are contacted lazily, so it
// succeeds whether or not they run.
func NewResolver(logger *slog.Logger, opts Options) *Resolver {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.DockerHost == "" {
		opts.DockerHost = "unix:///var/run/docker.sock"
	}
	if opts.CRIEndpoint == "" {
		opts.CRIEndpoint = "/run/containerd/containerd.sock"
	}
	r := &Resolver{logger: logger, now: time.Now, cache: map[string]entry{}, down: map[string]time.Time{}}
	dc, err := dockerclient.NewClientWithOpts(dockerclient.WithHost(opts.DockerHost), dockerclient.WithAPIVersionNegotiation())
	if err != nil {
		logger.Warn("Docker client unusable; container names come from containerd only", "host", opts.DockerHost, "err", err)
	} else {
		r.docker = dc
	}
	// grpc.NewClient connects lazily and reconnects on its own, so a
	// containerd that starts later is picked up.
	conn, err := grpc.NewClient("unix://"+strings.TrimPrefix(opts.CRIEndpoint, "unix://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		logger.Warn("containerd client unusable", "endpoint", opts.CRIEndpoint, "err", err)
	} else {
		r.cri = containersapi.NewContainersClient(conn)
	}
	return r
}

// Resolve returns the identity of a container id. Known containers are
// answered from the cache; an unknown one gives Identity{ContainerID: id}
// and is asked about again after a few seconds. It never blocks for much
// longer than two seconds, whatever the runtimes do.
func (r *Resolver) Resolve(ctx context.Context, containerID string) Identity {
	if !isContainerID(containerID) {
		return Identity{ContainerID: containerID}
	}
	now := r.now()
	r.mu.Lock()
	e, ok := r.cache[containerID]
	r.mu.Unlock()
	if ok && (e.known || now.Before(e.retryAt)) {
		return e.id
	}
	// One lookup per id however many scrapes ask at once.
	v, _, _ := r.group.Do(containerID, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		defer cancel()
		id, known := r.lookup(ctx, containerID)
		r.mu.Lock()
		r.cache[containerID] = entry{id: id, known: known, retryAt: r.now().Add(missRetry)}
		r.mu.Unlock()
		return id, nil
	})
	return v.(Identity)
}

// Forget drops a container from the cache, once its series have expired.
func (r *Resolver) Forget(containerID string) {
	r.mu.Lock()
	delete(r.cache, containerID)
	r.mu.Unlock()
}

func (r *Resolver) lookup(ctx context.Context, id string) (Identity, bool) {
	if r.docker != nil && r.usable("docker") {
		info, err := r.docker.ContainerInspect(ctx, id)
		switch {
		case err == nil:
			out := Identity{ContainerID: id, Name: strings.TrimPrefix(info.Name, "/")}
			if info.Config != nil {
				out.Image = info.Config.Image
				out.Namespace = info.Config.Labels[LabelPodNamespace]
				out.Pod = info.Config.Labels[LabelPodName]
				out.Container = info.Config.Labels[LabelContainerName]
			}
			r.up("docker")
			return out, true
		case cerrdefs.IsNotFound(err):
			r.up("docker")
		default:
			r.fail("docker", err)
		}
	}
	if r.cri != nil && r.usable("containerd") {
		ctx := metadata.AppendToOutgoingContext(ctx, "containerd-namespace", criNamespace)
		resp, err := r.cri.Get(ctx, &containersapi.GetContainerRequest{ID: id})
		switch {
		case err == nil:
			c := resp.GetContainer()
			l := c.GetLabels()
			r.up("containerd")
			return Identity{
				ContainerID: id,
				// containerd has no container names; kubelet's is the closest.
				Name:      l[LabelContainerName],
				Image:     c.GetImage(),
				Namespace: l[LabelPodNamespace],
				Pod:       l[LabelPodName],
				Container: l[LabelContainerName],
			}, true
		case status.Code(err) == codes.NotFound:
			r.up("containerd")
		default:
			r.fail("containerd", err)
		}
	}
	return Identity{ContainerID: id}, false
}

func (r *Resolver) usable(backend string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.now().Before(r.down[backend])
}

func (r *Resolver) up(backend string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, wasDown := r.down[backend]; wasDown {
		delete(r.down, backend)
		r.logger.Info("container runtime reachable again", "runtime", backend)
	}
}

func (r *Resolver) fail(backend string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, wasDown := r.down[backend]; !wasDown {
		r.logger.Warn("container runtime unreachable; identity labels stay empty until it is back", "runtime", backend, "err", err)
	}
	r.down[backend] = r.now().Add(downRetry)
}

// Docker returns the resolver's Docker client (nil if none), so other parts
// of the exporter watch the same engine with the same client.
func (r *Resolver) Docker() *dockerclient.Client { return r.docker }
