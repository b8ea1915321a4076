package identity

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	versionapi "github.com/containerd/containerd/api/services/version/v1"
	cerrdefs "github.com/containerd/errdefs"
	dockerclient "github.com/docker/docker/client"
	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The CRI labels kubelet puts on every container it creates.
const (
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodName       = "io.kubernetes.pod.name"
	LabelContainerName = "io.kubernetes.container.name"
	// The runtimes' marks of a pod sandbox: containerd's CRI plugin, and
	// dockershim / cri-dockerd.
	LabelContainerdKind = "io.cri-containerd.kind"
	LabelDockerType     = "io.kubernetes.docker.type"
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
	// DockerHost is the Docker engine's address; empty means the first of
	// DockerSockets that exists (the first of them if none does).
	DockerHost string
	// CRIEndpoint is containerd's socket, asked for containers Docker does
	// not know (Kubernetes with containerd). Empty means the first of
	// ContainerdSockets that exists; a missing socket is not an error.
	CRIEndpoint string
	// CRISocket is a CRI runtime's socket (CRI-O), asked through the CRI
	// API for containers neither Docker nor containerd knows. Empty means
	// the first of CRISockets that exists, or none.
	CRISocket string
}

// Where the runtimes' sockets are: /var/run is a link to /run on a host,
// but a container (the DaemonSet, a scratch image) has only the path its
// socket was mounted at.
var (
	DockerSockets     = []string{"/var/run/docker.sock", "/run/docker.sock"}
	ContainerdSockets = []string{"/run/containerd/containerd.sock", "/var/run/containerd/containerd.sock"}
	CRISockets        = []string{"/run/crio/crio.sock", "/var/run/crio/crio.sock"}
)

func firstExisting(paths []string) string {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return paths[0]
}

// DockerHost is the Docker address the resolver uses.
func (r *Resolver) DockerHost() string { return r.opts.DockerHost }

// ContainerdSocket is the containerd socket the resolver uses.
func (r *Resolver) ContainerdSocket() string { return r.opts.CRIEndpoint }

// CRISocket is the CRI runtime socket the resolver uses; "" for none.
func (r *Resolver) CRISocket() string { return r.opts.CRISocket }

// Resolver answers who a container is, from a cache filled by asking the
// Docker engine and then containerd. It is shared by every collector so that
// all series of one container carry the same labels.
type Resolver struct {
	logger *slog.Logger
	opts   Options
	docker *dockerclient.Client // nil if the client could not be built
	cri    containersapi.ContainersClient
	crVer  versionapi.VersionClient
	// criRT is the CRI API of a runtime that is neither Docker nor
	// containerd (CRI-O): one client for any CRI runtime, where the
	// runtimes' own APIs give more (Docker's names, containerd's
	// containers outside CRI).
	criRT criapi.RuntimeServiceClient
	group singleflight.Group
	now   func() time.Time

	mu    sync.Mutex
	cache map[string]entry
	down  map[string]time.Time // backend -> skip until
}

type entry struct {
	id      Identity
	known   bool
	absent  bool      // every runtime asked answered that it has no such container
	retryAt time.Time // for unknown ids
}

// Presence is what the runtimes said of a container id.
type Presence int

const (
	// Unanswered: a runtime could not be asked (down, timing out).
	Unanswered Presence = iota
	// Present: a runtime knows the container.
	Present
	// Absent: every runtime was asked and none knows the container.
	Absent
)

// NewResolver builds a resolver. Runtimes are contacted lazily, so it
// succeeds whether or not they run.
func NewResolver(logger *slog.Logger, opts Options) *Resolver {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.DockerHost == "" {
		opts.DockerHost = "unix://" + firstExisting(DockerSockets)
	}
	if opts.CRIEndpoint == "" {
		opts.CRIEndpoint = firstExisting(ContainerdSockets)
	}
	if opts.CRISocket == "" {
		if p := firstExisting(CRISockets); exists(p) {
			opts.CRISocket = p
		}
	}
	r := &Resolver{logger: logger, opts: opts, now: time.Now, cache: map[string]entry{}, down: map[string]time.Time{}}
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
		r.crVer = versionapi.NewVersionClient(conn)
	}
	if opts.CRISocket != "" {
		conn, err := grpc.NewClient("unix://"+strings.TrimPrefix(opts.CRISocket, "unix://"),
			grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			logger.Warn("CRI client unusable", "endpoint", opts.CRISocket, "err", err)
		} else {
			r.criRT = criapi.NewRuntimeServiceClient(conn)
		}
	}
	return r
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Resolve returns the identity of a container id. Known containers are
// answered from the cache; an unknown one gives Identity{ContainerID: id}
// and is asked about again after a few seconds. It never blocks for much
// longer than two seconds, whatever the runtimes do.
func (r *Resolver) Resolve(ctx context.Context, containerID string) Identity {
	id, _ := r.Lookup(ctx, containerID)
	return id
}

// Lookup is Resolve that also says whether the runtimes know the id.
func (r *Resolver) Lookup(ctx context.Context, containerID string) (Identity, Presence) {
	if !isContainerID(containerID) {
		return Identity{ContainerID: containerID}, Unanswered
	}
	now := r.now()
	r.mu.Lock()
	e, ok := r.cache[containerID]
	r.mu.Unlock()
	if ok && (e.known || now.Before(e.retryAt)) {
		return e.id, e.presence()
	}
	// One lookup per id however many scrapes ask at once.
	v, _, _ := r.group.Do(containerID, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		defer cancel()
		id, known, absent := r.lookup(ctx, containerID, false)
		e := entry{id: id, known: known, absent: absent, retryAt: r.now().Add(missRetry)}
		r.mu.Lock()
		r.cache[containerID] = e
		r.mu.Unlock()
		return e, nil
	})
	e = v.(entry)
	return e.id, e.presence()
}

// Known returns a container's identity if the cache holds it, asking no
// runtime: a caller that must not block learns whether a lookup already
// answered.
func (r *Resolver) Known(containerID string) (Identity, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.cache[containerID]
	return e.id, ok && e.known
}

// Await asks the runtimes, every interval, until one of them knows the
// container, every one of them answers that none does, or ctx ends. Unlike
// Lookup it bypasses the cached miss and the skip of a runtime that failed:
// a caller that would rather wait than go without a name (an alert about
// to be pushed) asks a runtime that is coming back as soon as it is back.
// What it learns is cached for Resolve.
func (r *Resolver) Await(ctx context.Context, containerID string, interval time.Duration) (Identity, Presence) {
	if !isContainerID(containerID) {
		return Identity{ContainerID: containerID}, Absent
	}
	for {
		if id, ok := r.Known(containerID); ok {
			return id, Present
		}
		v, _, _ := r.group.Do("await/"+containerID, func() (any, error) {
			lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
			defer cancel()
			id, known, absent := r.lookup(lctx, containerID, true)
			e := entry{id: id, known: known, absent: absent, retryAt: r.now().Add(missRetry)}
			r.mu.Lock()
			r.cache[containerID] = e
			r.mu.Unlock()
			return e, nil
		})
		e := v.(entry)
		if p := e.presence(); p != Unanswered {
			return e.id, p
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return e.id, Unanswered
		case <-t.C:
		}
	}
}

func (e entry) presence() Presence {
	switch {
	case e.known:
		return Present
	case e.absent:
		return Absent
	}
	return Unanswered
}

// Runtime names a runtime the resolver asks.
type Runtime string

const (
	Docker     Runtime = "docker"
	Containerd Runtime = "containerd"
	CRI        Runtime = "cri"
)

// Runtimes are the runtimes the resolver asks, in order.
var Runtimes = []Runtime{Docker, Containerd, CRI}

// PresenceIn asks the given runtimes, uncached, whether they know a
// container: Present if one does, Absent if every one of them answered that
// it does not, Unanswered otherwise.
func (r *Resolver) PresenceIn(ctx context.Context, containerID string, runtimes ...Runtime) Presence {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	out := Absent
	for _, rt := range runtimes {
		var p Presence
		switch rt {
		case Docker:
			_, p = r.lookupDocker(ctx, containerID, false)
		case Containerd:
			_, p = r.lookupContainerd(ctx, containerID, false)
		case CRI:
			_, p = r.lookupCRI(ctx, containerID, false)
		}
		if p == Present {
			return Present
		}
		if p == Unanswered {
			out = Unanswered
		}
	}
	if len(runtimes) == 0 {
		return Unanswered
	}
	return out
}

// Reach asks each runtime for its version: what `breakwater check` reports.
func (r *Resolver) Reach(ctx context.Context) map[Runtime]string {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	out := map[Runtime]string{}
	if r.docker == nil {
		out[Docker] = "no client for " + r.opts.DockerHost
	} else if v, err := r.docker.ServerVersion(ctx); err != nil {
		out[Docker] = "unreachable at " + r.opts.DockerHost + ": " + err.Error()
	} else {
		out[Docker] = "reached at " + r.opts.DockerHost + " (Docker " + v.Version + ")"
	}
	if r.crVer == nil {
		out[Containerd] = "no client for " + r.opts.CRIEndpoint
	} else if v, err := r.crVer.Version(ctx, &emptypb.Empty{}); err != nil {
		out[Containerd] = "unreachable at " + r.opts.CRIEndpoint + ": " + status.Convert(err).Message()
	} else {
		out[Containerd] = "reached at " + r.opts.CRIEndpoint + " (containerd " + v.GetVersion() + ")"
	}
	if r.criRT == nil {
		out[CRI] = "no CRI socket (none of " + strings.Join(CRISockets, ", ") + " exists)"
	} else if v, err := r.criRT.Version(ctx, &criapi.VersionRequest{}); err != nil {
		out[CRI] = "unreachable at " + r.opts.CRISocket + ": " + status.Convert(err).Message()
	} else {
		out[CRI] = "reached at " + r.opts.CRISocket + " (" + v.GetRuntimeName() + " " + v.GetRuntimeVersion() + ", CRI " + v.GetRuntimeApiVersion() + ")"
	}
	return out
}

// Sockets returns the paths of the runtime sockets the resolver talks to
// (a Docker host that is not a Unix socket is left out).
func (r *Resolver) Sockets() []string {
	var out []string
	if p, ok := strings.CutPrefix(r.opts.DockerHost, "unix://"); ok {
		out = append(out, p)
	}
	out = append(out, strings.TrimPrefix(r.opts.CRIEndpoint, "unix://"))
	if r.opts.CRISocket != "" {
		out = append(out, strings.TrimPrefix(r.opts.CRISocket, "unix://"))
	}
	return out
}

// Forget drops a container from the cache, once its series have expired.
func (r *Resolver) Forget(containerID string) {
	r.mu.Lock()
	delete(r.cache, containerID)
	r.mu.Unlock()
}

// lookup asks Docker, then containerd, then the CRI runtime. absent is
// true when each runtime there is answered and none knows the id. force
// asks a runtime even while it is skipped after a failure.
func (r *Resolver) lookup(ctx context.Context, id string, force bool) (_ Identity, known, absent bool) {
	ident, p := r.lookupDocker(ctx, id, force)
	if p == Present {
		return ident, true, false
	}
	absent = p == Absent
	ident, p = r.lookupContainerd(ctx, id, force)
	if p == Present {
		return ident, true, false
	}
	absent = absent && p == Absent
	if r.criRT == nil {
		return Identity{ContainerID: id}, false, absent
	}
	ident, p = r.lookupCRI(ctx, id, force)
	if p == Present {
		return ident, true, false
	}
	return Identity{ContainerID: id}, false, absent && p == Absent
}

// lookupCRI asks a CRI runtime for a container, then for a pod sandbox:
// the sandbox has a cgroup of its own, and no series.
func (r *Resolver) lookupCRI(ctx context.Context, id string, force bool) (Identity, Presence) {
	if r.criRT == nil || !force && !r.usable(string(CRI)) {
		return Identity{ContainerID: id}, Unanswered
	}
	resp, err := r.criRT.ContainerStatus(ctx, &criapi.ContainerStatusRequest{ContainerId: id})
	if status.Code(err) == codes.NotFound {
		sb, serr := r.criRT.PodSandboxStatus(ctx, &criapi.PodSandboxStatusRequest{PodSandboxId: id})
		switch {
		case serr == nil:
			m := sb.GetStatus().GetMetadata()
			r.up(string(CRI))
			return Identity{ContainerID: id, Namespace: m.GetNamespace(), Pod: m.GetName(), Sandbox: true}, Present
		case status.Code(serr) != codes.NotFound:
			err = serr
		}
	}
	switch {
	case err == nil:
		c := resp.GetStatus()
		l := c.GetLabels()
		r.up(string(CRI))
		return Identity{
			ContainerID: id,
			Name:        c.GetMetadata().GetName(),
			Image:       criImage(c),
			Namespace:   l[LabelPodNamespace],
			Pod:         l[LabelPodName],
			Container:   c.GetMetadata().GetName(),
		}, Present
	case status.Code(err) == codes.NotFound:
		r.up(string(CRI))
		return Identity{ContainerID: id}, Absent
	default:
		r.fail(string(CRI), err)
		return Identity{ContainerID: id}, Unanswered
	}
}

// criImage is the image a CRI container was asked for: kubelet passes the
// image's id in the spec and says what the pod named separately.
func criImage(c *criapi.ContainerStatus) string {
	if u := c.GetImage().GetUserSpecifiedImage(); u != "" {
		return u
	}
	if i := c.GetImage().GetImage(); i != "" && !strings.HasPrefix(i, "sha256:") {
		return i
	}
	return c.GetImageRef()
}

func (r *Resolver) lookupDocker(ctx context.Context, id string, force bool) (Identity, Presence) {
	if r.docker == nil || !force && !r.usable("docker") {
		return Identity{ContainerID: id}, Unanswered
	}
	info, err := r.docker.ContainerInspect(ctx, id)
	switch {
	case err == nil:
		out := Identity{ContainerID: id, Name: strings.TrimPrefix(info.Name, "/")}
		if info.Config != nil {
			out.Image = info.Config.Image
			out.Namespace = info.Config.Labels[LabelPodNamespace]
			out.Pod = info.Config.Labels[LabelPodName]
			out.Container = info.Config.Labels[LabelContainerName]
			out.Sandbox = info.Config.Labels[LabelDockerType] == "podsandbox"
		}
		r.up("docker")
		return out, Present
	case cerrdefs.IsNotFound(err):
		r.up("docker")
		return Identity{ContainerID: id}, Absent
	default:
		r.fail("docker", err)
		return Identity{ContainerID: id}, Unanswered
	}
}

func (r *Resolver) lookupContainerd(ctx context.Context, id string, force bool) (Identity, Presence) {
	if r.cri == nil || !force && !r.usable("containerd") {
		return Identity{ContainerID: id}, Unanswered
	}
	ctx = metadata.AppendToOutgoingContext(ctx, "containerd-namespace", criNamespace)
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
			Sandbox:   l[LabelContainerdKind] == "sandbox",
		}, Present
	case status.Code(err) == codes.NotFound:
		r.up("containerd")
		return Identity{ContainerID: id}, Absent
	default:
		r.fail("containerd", err)
		return Identity{ContainerID: id}, Unanswered
	}
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
