// Package names holds the names breakwater's parts share: the metrics and
// labels the exporter exposes (../shared design contract), the alerts and
// recording rules of the rule pack, severities, label values and dashboard
// uids. The rules generator, the Alertmanager push and the dashboards
// generator spell a shared name only through this package, so they cannot
// drift apart; names_test.go checks the parts that do not import it yet.
package names

// Namespace is the prefix of breakwater's own metrics.
const Namespace = "breakwater"

// Security metrics: per container, with the identity labels.
const (
	MetricSyscallsDenied        = "breakwater_syscalls_denied_total"
	MetricSyscallsNovel         = "breakwater_syscalls_novel_total"
	MetricNamespaceOperations   = "breakwater_namespace_operations_total"
	MetricMountOperations       = "breakwater_mount_operations_total"
	MetricCapabilityChecks      = "breakwater_capability_checks_total"
	MetricContainerCapabilities = "breakwater_container_capabilities"
	MetricEscapeAttempts        = "breakwater_escape_attempts_total"
	// MetricContainerRestarts has the identity without container_id.
	MetricContainerRestarts = "breakwater_container_restarts_total"
)

// Self metrics: the exporter's own health.
const (
	MetricBuildInfo                 = "breakwater_build_info"
	MetricBPFProgramAttached        = "breakwater_bpf_program_attached"
	MetricBPFEventsLost             = "breakwater_bpf_events_lost_total"
	MetricBPFEventsFolded           = "breakwater_bpf_events_folded_total"
	MetricTrackedContainers         = "breakwater_tracked_containers"
	MetricSeriesExpired             = "breakwater_series_expired_total"
	MetricCgroupsEvicted            = "breakwater_cgroups_evicted_total"
	MetricSyscallProfiles           = "breakwater_syscall_profiles"
	MetricCapabilityChecksInferred  = "breakwater_capability_checks_inferred"
	MetricScrapeCollectorDuration   = "breakwater_scrape_collector_duration_seconds"
	MetricScrapeCollectorSuccess    = "breakwater_scrape_collector_success"
	MetricAlertmanagerNotifications = "breakwater_alertmanager_notifications_total"
	MetricAlertmanagerPushLatency   = "breakwater_alertmanager_push_latency_seconds"
	// MetricStateFile is 1 for the state each state file is in.
	MetricStateFile = "breakwater_state_file"
)

// BreakwaterMetrics lists every metric breakwater itself exposes.
var BreakwaterMetrics = []string{
	MetricSyscallsDenied, MetricSyscallsNovel, MetricNamespaceOperations, MetricMountOperations,
	MetricCapabilityChecks, MetricContainerCapabilities, MetricEscapeAttempts, MetricContainerRestarts,
	MetricBuildInfo, MetricBPFProgramAttached, MetricBPFEventsLost, MetricBPFEventsFolded,
	MetricTrackedContainers, MetricSeriesExpired, MetricCgroupsEvicted, MetricSyscallProfiles,
	MetricCapabilityChecksInferred, MetricScrapeCollectorDuration, MetricScrapeCollectorSuccess,
	MetricAlertmanagerNotifications, MetricAlertmanagerPushLatency, MetricStateFile,
}

// cAdvisor metrics the rules and dashboards read; the embedded cAdvisor
// keeps cAdvisor's own names.
const (
	MetricCPUUsage           = "container_cpu_usage_seconds_total"
	MetricCPUCFSPeriods      = "container_cpu_cfs_periods_total"
	MetricCPUCFSThrottled    = "container_cpu_cfs_throttled_periods_total"
	MetricMemoryWorkingSet   = "container_memory_working_set_bytes"
	MetricMemoryRSS          = "container_memory_rss"
	MetricMemoryLimit        = "container_spec_memory_limit_bytes"
	MetricOOMEvents          = "container_oom_events_total"
	MetricStartTime          = "container_start_time_seconds"
	MetricMachineMemoryBytes = "machine_memory_bytes"
	MetricMachineCPUCores    = "machine_cpu_cores"
)

// CAdvisorMetrics lists the cAdvisor metrics above.
var CAdvisorMetrics = []string{
	MetricCPUUsage, MetricCPUCFSPeriods, MetricCPUCFSThrottled, MetricMemoryWorkingSet, MetricMemoryRSS,
	MetricMemoryLimit, MetricOOMEvents, MetricStartTime, MetricMachineMemoryBytes, MetricMachineCPUCores,
}

// Series other programs produce that the rules and dashboards read.
const (
	MetricKSMContainerRestarts = "kube_pod_container_status_restarts_total" // kube-state-metrics
	MetricUp                   = "up"                                       // Prometheus, per target
	MetricScrapeDuration       = "scrape_duration_seconds"                  // Prometheus, per target
	MetricAlerts               = "ALERTS"                                   // Prometheus, per alert
)

// Identity labels: on every per-container series.
const (
	LabelContainerID = "container_id"
	LabelName        = "name"
	LabelImage       = "image"
	LabelNamespace   = "namespace"
	LabelPod         = "pod"
	LabelContainer   = "container"
)

// IdentityLabels are the identity labels in the contract's order, which is
// the order of identity.Identity.LabelValues. Do not modify.
var IdentityLabels = []string{LabelContainerID, LabelName, LabelImage, LabelNamespace, LabelPod, LabelContainer}

// RestartIdentityLabels identify a container across its restarts: the
// identity without container_id.
var RestartIdentityLabels = []string{LabelName, LabelImage, LabelNamespace, LabelPod, LabelContainer}

// Other labels.
const (
	LabelCgroupID      = "id" // cAdvisor's cgroup path
	LabelCPU           = "cpu"
	LabelJob           = "job"
	LabelInstance      = "instance"
	LabelCluster       = "cluster" // the default cluster label of the rules and dashboards
	LabelSyscall       = "syscall"
	LabelErrno         = "errno"
	LabelReason        = "reason"
	LabelOperation     = "operation"
	LabelNamespaceType = "namespace_type" // the contract's "namespace": that name is the Kubernetes identity label
	LabelCapability    = "capability"
	LabelScope         = "scope"
	LabelState         = "state"
	LabelFile          = "file"
	LabelTechnique     = "technique"
	LabelResult        = "result"
	LabelProgram       = "program"
	LabelHook          = "hook"
	LabelCollector     = "collector"
	LabelVersion       = "version"
	LabelSeverity      = "severity"
	LabelAlertname     = "alertname"
	LabelAlertstate    = "alertstate"
)

// Values of breakwater_syscall_profiles' state label.
const (
	StateLearning = "learning" // the image's learning period is still running
	StateLearned  = "learned"  // the profile is fixed; calls outside it are novel
)

// Values of the result label.
const (
	ResultAllowed = "allowed" // escape attempts, namespace and mount operations: the kernel let it happen
	ResultBlocked = "blocked" // escape attempts: refused
	ResultDenied  = "denied"  // namespace and mount operations, capability checks: refused
	ResultGranted = "granted" // capability checks
)

// EscapeResults are the result values of breakwater_escape_attempts_total.
var EscapeResults = []string{ResultBlocked, ResultAllowed}

// Values of the reason label of breakwater_syscalls_denied_total.
const (
	ReasonSeccomp = "seccomp" // refused by the seccomp filter before it ran
	ReasonKernel  = "kernel"  // ran and returned EPERM or EACCES itself
)

// Values of the scope label of breakwater_capability_checks_total.
const (
	ScopeHost      = "host"      // checked against the initial user namespace
	ScopeNamespace = "namespace" // checked inside a user namespace
)

// Values of the result label of breakwater_alertmanager_notifications_total.
const (
	PushSent    = "sent"    // accepted by an Alertmanager
	PushFailed  = "failed"  // a delivery attempt failed; it is retried
	PushDropped = "dropped" // queue overflow, rejected, or ended before delivery
	PushFolded  = "folded"  // an attempt folded into an alert already sent
)

// Values of the state label of breakwater_state_file.
const (
	StateFileOK         = "ok"         // read (or absent) at start, and the last save worked
	StateFileCorrupt    = "corrupt"    // a corrupt copy is kept beside it for the operator
	StateFileUnwritable = "unwritable" // the last save failed
)

// StateFileStates are the values of breakwater_state_file's state label.
var StateFileStates = []string{StateFileOK, StateFileCorrupt, StateFileUnwritable}

// Escape techniques: the values of the technique label.
const (
	TechniqueMount              = "mount"
	TechniqueNamespace          = "namespace"
	TechniqueChroot             = "chroot"
	TechniquePtrace             = "ptrace"
	TechniqueKernelModule       = "kernel_module"
	TechniqueKernelInterface    = "kernel_interface"
	TechniqueCgroupReleaseAgent = "cgroup_release_agent"
	TechniqueProcSysWrite       = "proc_sys_write"
	TechniqueRuntimeSocket      = "runtime_socket"
	TechniqueBlockDevice        = "block_device"
)

// Techniques lists every technique in the contract's order.
var Techniques = []string{
	TechniqueMount, TechniqueNamespace, TechniqueChroot, TechniquePtrace, TechniqueKernelModule,
	TechniqueKernelInterface, TechniqueCgroupReleaseAgent, TechniqueProcSysWrite, TechniqueRuntimeSocket, TechniqueBlockDevice,
}

// Severities the rule pack uses by default.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// Alert names of the contract.
const (
	AlertMemoryNearLimit        = "ContainerMemoryNearLimit"
	AlertCPUSpike               = "ContainerCPUSpike"
	AlertCPUThrottled           = "ContainerCPUThrottled"
	AlertRestartingOften        = "ContainerRestartingOften"
	AlertCrashLooping           = "ContainerCrashLooping"
	AlertOOMKilled              = "ContainerOOMKilled"
	AlertEscapeAttempt          = "ContainerEscapeAttempt"
	AlertEscapeSucceeded        = "ContainerEscapeSucceeded"
	AlertNovelSyscall           = "ContainerNovelSyscall"
	AlertSyscallsDeniedBurst    = "ContainerSyscallsDeniedBurst"
	AlertPrivilegedCapabilities = "ContainerPrivilegedCapabilities"
	AlertBreakwaterDown         = "BreakwaterDown"
	AlertProbeDetached          = "BreakwaterProbeDetached"
	AlertEventsLost             = "BreakwaterEventsLost"
	AlertCollectorFailed        = "BreakwaterCollectorFailed"
	AlertPushFailing            = "BreakwaterPushFailing"
	AlertStateFileProblem       = "BreakwaterStateFileProblem"
)

// Alerts lists every alert of the pack, in the order of the rule file.
var Alerts = []string{
	AlertMemoryNearLimit, AlertCPUSpike, AlertCPUThrottled, AlertRestartingOften, AlertCrashLooping, AlertOOMKilled,
	AlertEscapeAttempt, AlertEscapeSucceeded, AlertNovelSyscall, AlertSyscallsDeniedBurst, AlertPrivilegedCapabilities,
	AlertBreakwaterDown, AlertProbeDetached, AlertEventsLost, AlertCollectorFailed, AlertPushFailing,
	AlertStateFileProblem,
}

// PushedAlerts are the alerts breakwater also pushes to Alertmanager itself.
var PushedAlerts = []string{AlertEscapeAttempt, AlertEscapeSucceeded}

// Recording rules. Dashboards query them by these names, so the names stay
// whatever windows the rules are configured with.
const (
	RecordCPURate        = "breakwater:container_cpu_usage_seconds:rate5m"
	RecordCPUBaseline    = "breakwater:container_cpu_usage_seconds:rate5m_avg_1h"
	RecordCPUNormal      = "breakwater:container_cpu_usage_seconds:rate5m_normal"
	RecordMemoryRatio    = "breakwater:container_memory_working_set:ratio_limit"
	RecordDeniedRate     = "breakwater:container_syscalls_denied:rate5m"
	RecordDeniedBaseline = "breakwater:container_syscalls_denied:rate5m_avg_1h"
	RecordDeniedNormal   = "breakwater:container_syscalls_denied:rate5m_normal"
)

// Records lists every recording rule, in the order of the rule file.
var Records = []string{
	RecordCPURate, RecordCPUBaseline, RecordCPUNormal, RecordMemoryRatio,
	RecordDeniedRate, RecordDeniedBaseline, RecordDeniedNormal,
}

// Annotations of the alerts, evaluated and pushed.
const (
	AnnotationSummary      = "summary"
	AnnotationDescription  = "description"
	AnnotationRunbookURL   = "runbook_url"
	AnnotationDashboardURL = "dashboard_url"
	AnnotationAttempts     = "attempts" // pushed alerts: attempts one alert folds
)

// Grafana dashboard uids: links, bookmarks and dashboard_url depend on them.
const (
	DashboardSecurity  = "breakwater-security"
	DashboardResources = "breakwater-resources"
	DashboardHealth    = "breakwater-health"
)

// Dashboard variables, which dashboard_url links fill from alert labels.
const (
	VarCluster   = "cluster"
	VarJob       = "job"
	VarInstance  = "instance"
	VarNamespace = "namespace"
	VarPod       = "pod"
	VarContainer = "container" // the runtime name (label name)
)
